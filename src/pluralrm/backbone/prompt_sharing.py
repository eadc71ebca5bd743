"""Responses to one prompt share the prompt's forward pass (causal backbones only).

Ranking N responses to a prompt re-encodes the prompt N times on the plain path. In a causal model the
hidden states and keys/values of a token depend only on the tokens before it, so the common start of N
texts can be run once (batch 1, ``use_cache=True``) and each text's remainder run on top of that KV
cache. What is shared is worked out on the token ids themselves, after left truncation: the longest
common prefix of the ids of texts with the same prompt. Nothing assumes that the prompt's own
tokenization is a prefix of the text's (BPE merges across the prompt/response boundary, and left
truncation may cut texts of different lengths at different places, which leaves no common prefix).

The features are the plain path's: a suffix is right-padded and its attention mask is ones over the
prefix followed by its own mask, so its real tokens see exactly the tokens (and get exactly the position
ids, ``past length + j``) they would see unshared, and pad tokens are never seen by real ones.
``"last"`` pooling reads the suffix; ``"mean"`` adds the prefix's hidden-state sum (the same for every
member) to the suffix's masked sum. Pooling is in float32 whatever the model's dtype, as in
:func:`pluralrm.backbone.featurizer.pool_hidden`.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pluralrm.backbone.collate import length_sorted_batches, pad_right
from pluralrm.backbone.early_exit import decoder_blocks, run_until
from pluralrm.backbone.spec import FeatureSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel

logger = logging.getLogger(__name__)

# Below this many shared tokens a group goes through the plain path: the separate prefix pass and the
# group's own (smaller, less full) batches cost about what sharing a few tokens saves. A judgement, not
# a measurement; features are identical either way.
MIN_SHARED_TOKENS = 16


@dataclass(frozen=True)
class SharedPrefix:
    """Texts whose token ids start with the same ``prefix``.

    Attributes
    ----------
    prefix : list of int
        Ids run once; every member has at least one id after it.
    members : list of int
        Indices of the texts (into the caller's list of id lists).
    """

    prefix: list[int]
    members: list[int]


def common_prefix_length(ids: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of several id lists.

    Examples
    --------
    >>> common_prefix_length([[1, 2, 3], [1, 2, 4, 5], [1, 2]])
    2
    """
    shortest = min(len(seq) for seq in ids)
    for position in range(shortest):
        token = ids[0][position]
        if any(seq[position] != token for seq in ids):
            return position
    return shortest


def plan_prefix_sharing(
    ids: Sequence[Sequence[int]], labels: Sequence[Hashable], *, min_shared: int = MIN_SHARED_TOKENS
) -> tuple[list[SharedPrefix], list[int]]:
    """Split texts into groups that share a prefix and the rest (for the plain path).

    Parameters
    ----------
    ids : sequence of sequences of int
        Token ids of each text as the model will read them (after truncation).
    labels : sequence of hashable
        Which prompt each text answers; only texts with equal labels and equal first ``min_shared`` ids
        are compared (so texts that left truncation cut elsewhere do not spoil their prompt's group).
        A label only narrows the search: the shared part is measured on the ids, so a label that groups
        unrelated texts costs speed, never correctness.
    min_shared : int
        Groups sharing fewer tokens go to the rest.

    Returns
    -------
    groups : list of SharedPrefix
        Each with at least two members and ``len(prefix) >= min_shared``.
    rest : list of int
        Indices of texts that run unshared, in increasing order.

    Examples
    --------
    >>> ids = [[5, 6, 7], [5, 6], [9], [4, 6, 7]]
    >>> plan_prefix_sharing(ids, ["a", "a", "b", "a"], min_shared=1)
    ([SharedPrefix(prefix=[5], members=[0, 1])], [2, 3])
    """
    if len(ids) != len(labels):
        raise ValueError(f"{len(ids)} id lists for {len(labels)} labels")
    min_shared = max(min_shared, 1)
    by_start: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        by_start.setdefault((label, tuple(ids[index][:min_shared])), []).append(index)
    groups: list[SharedPrefix] = []
    rest: list[int] = []
    for members in by_start.values():
        seqs = [ids[i] for i in members]
        shared = common_prefix_length(seqs) if len(members) >= 2 else 0
        if shared == min(len(seq) for seq in seqs):
            shared -= 1  # a text equal to the prefix still needs one token of its own to pool
        if len(members) < 2 or shared < min_shared:
            rest.extend(members)
            continue
        groups.append(SharedPrefix(prefix=list(seqs[0][:shared]), members=members))
    return groups, sorted(rest)


def shared_prefix_passes(
    model: PreTrainedModel,
    group: SharedPrefix,
    ids: Sequence[Sequence[int]],
    specs: Sequence[FeatureSpec],
    *,
    final_layer: int,
    pad_id: int,
    device: str,
    batch_size: int,
    max_batch_tokens: int,
) -> Iterator[tuple[list[int], dict[FeatureSpec, np.ndarray]]]:
    """Pooled features of a group's members, one suffix batch at a time.

    Parameters
    ----------
    model : transformers model
        A causal backbone (without LM head) that accepts ``past_key_values``.
    group : SharedPrefix
        From :func:`plan_prefix_sharing`.
    ids : sequence of sequences of int
        The same id lists the group's indices point into.
    specs : sequence of FeatureSpec
        Canonical specs (non-negative layers).
    final_layer : int
        The backbone's number of layers: that index is read from ``last_hidden_state``.
    pad_id, device : int, str
        Padding id and the model's device.
    batch_size, max_batch_tokens : int
        Limits of one suffix batch. Only suffix tokens count: the prefix adds keys/values to attend to,
        not activations to compute.

    Yields
    ------
    members : list of int
        Indices (into ``ids``) of this batch.
    pooled : dict of FeatureSpec to ndarray of shape (len(members), d)
        float32 features, identical (to rounding) to an unshared pass.
    """
    import torch
    from transformers import DynamicCache

    layers = sorted({spec.layer for spec in specs})
    plen = len(group.prefix)
    with torch.inference_mode():
        prefix_cache = DynamicCache(config=model.config)
        prefix_ids = torch.tensor([group.prefix], dtype=torch.long, device=device)
        prefix_hidden = _hidden_by_layer(
            model, layers, final_layer, prefix_ids, torch.ones_like(prefix_ids), prefix_cache
        )
        # (d,) float32 sums over the prefix, needed only for mean pooling.
        mean_layers = {spec.layer for spec in specs if spec.pooling == "mean"}
        prefix_sums = {layer: prefix_hidden[layer][0].float().sum(dim=0) for layer in mean_layers}
        suffix_lengths = [len(ids[i]) - plen for i in group.members]
        for batch in length_sorted_batches(suffix_lengths, batch_size, max_batch_tokens):
            members = [group.members[j] for j in batch]
            input_ids, suffix_mask = pad_right([ids[i][plen:] for i in members], pad_id, device)
            rows = len(members)
            # A fresh cache per batch: the forward pass appends the suffix's keys/values to it.
            cache = DynamicCache(ddp_cache_data=_expanded(prefix_cache, rows), config=model.config)
            attention_mask = torch.cat([suffix_mask.new_ones((rows, plen)), suffix_mask], dim=1)
            hidden = _hidden_by_layer(model, layers, final_layer, input_ids, attention_mask, cache)
            yield members, _pool(hidden, suffix_mask, prefix_sums, plen, specs)


def _expanded(cache, rows: int) -> list[tuple]:
    """Each layer's prefix keys/values (1, heads, prefix, head_dim) as ``rows`` views (no copy yet).

    Layers an early-stopped prefix pass never reached stay empty; the suffix pass stops there too.
    """
    return [
        (None, None) if keys is None else (keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1))
        for keys, values, *_ in cache
    ]


def _hidden_by_layer(model, layers: list[int], final_layer: int, input_ids, attention_mask, cache) -> dict:
    """Hidden states of ``layers`` (batch, seq, d), stopping after the deepest block when that is enough.

    The same choice as the featurizer's plain pass (a middle layer stops the stack early; the final
    layer is read after the final norm), so both paths read the same tensors.
    """
    blocks = decoder_blocks(model)
    depth = max(layers)

    def run(**inputs):
        return model(**inputs, past_key_values=cache, use_cache=True)

    if blocks is not None and min(layers) >= 1 and depth < final_layer:
        return run_until(run, blocks, depth, input_ids, attention_mask)
    need_all = any(layer != final_layer for layer in layers)
    output = run(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=need_all)
    hidden = {final_layer: output.last_hidden_state}
    if need_all:
        hidden |= {layer: output.hidden_states[layer] for layer in layers if layer != final_layer}
    return hidden


def _pool(hidden: dict, suffix_mask, prefix_sums: dict, plen: int, specs) -> dict:
    """Pool suffix hidden states (batch, seq, d) given the right-padded suffix mask (batch, seq)."""
    import torch

    out = {}
    lengths = suffix_mask.sum(dim=1)  # (batch,) real suffix tokens; at least 1
    for spec in specs:
        states = hidden[spec.layer].float()
        if spec.pooling == "last":
            pooled = states[torch.arange(states.shape[0]), lengths - 1]
        else:
            mask = suffix_mask.unsqueeze(-1).to(states.dtype)
            total = prefix_sums[spec.layer] + (states * mask).sum(dim=1)
            pooled = total / (lengths + plen).unsqueeze(-1).to(states.dtype)
        if spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        out[spec] = pooled.cpu().numpy()
    return out
