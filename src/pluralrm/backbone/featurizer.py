"""Featurize (prompt, response) texts into fixed vectors ``h(x, y)``, once, with a cache.

Why it is built this way:

* **Length-sorted batches, right padding, pooling from the attention mask.** Sorting by token count keeps
  padding (wasted FLOPs) small; pooling positions come from the mask, never from the pad id, so a wrong
  or shared pad token cannot move the pooled position. Inputs are always right-padded internally, so the
  tokenizer's ``padding_side`` does not matter; with right padding a causal model's real tokens never
  attend to pads and their position ids are unchanged. Features therefore do not depend on batch size,
  order or padding side (the tests check all three).
* **Left truncation.** A preference is about the response, which sits at the end of the text; cutting
  the start keeps it (and the last-token position) intact. Done by slicing ids (:mod:`.collate`), never by
  changing the shared tokenizer, so one featurizer can serve several threads.
* **Device and dtype are the backbone's**, resolved once by :func:`load_backbone`; batches go to that
  device and pooled vectors come back as float32 numpy at once. The dtype is part of the namespace.
* **Several (pooling, layer) candidates from one forward pass**, each cached under its own namespace, so
  comparing layers or poolings costs one featurization.
* **Responses to one prompt share its forward pass** (causal backbones, :mod:`.prompt_sharing`): the
  prompt's tokens run once and each response runs on its KV cache, with the same features.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np

from pluralrm.backbone.collate import length_sorted_batches, pad_right, tokenize_left_truncated
from pluralrm.backbone.early_exit import decoder_blocks, run_until
from pluralrm.backbone.feature_cache import FeatureCache, NamespaceCache, text_key
from pluralrm.backbone.formatting import (
    FORMAT_VERSION,
    format_conversation,
    prompt_messages,
    uses_chat_template,
)
from pluralrm.backbone.loading import Backbone
from pluralrm.backbone.progress import TokenProgress
from pluralrm.backbone.prompt_sharing import plan_prefix_sharing, shared_prefix_passes
from pluralrm.backbone.spec import FeatureSpec, Pooling, default_spec
from pluralrm.config import FEATURIZE
from pluralrm.data.records import Prompt

logger = logging.getLogger(__name__)


def pool_hidden(hidden, attention_mask, pooling: Pooling):
    """Pool ``hidden`` (batch, seq, d) over real tokens given ``attention_mask`` (batch, seq).

    The last real token is found from the mask itself, so left and right padding both work. Pooling is
    done in float32 whatever the model's dtype (a bf16 mean over hundreds of tokens loses digits).
    """
    import torch

    hidden = hidden.float()
    if pooling == "last":
        seq_len = attention_mask.shape[1]
        # Index of the last 1 in each row: flip, find the first 1, map back.
        last = seq_len - 1 - torch.flip(attention_mask, dims=[1]).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0]), last]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class Featurizer:
    """Map texts or (prompt, response) pairs to float32 feature vectors.

    Parameters
    ----------
    backbone : Backbone
        From :func:`pluralrm.backbone.load_backbone`.
    spec : FeatureSpec, optional
        Pooling and layer; defaults to :func:`default_spec` for the backbone's kind.
    max_length : int
        Token budget per text; longer texts lose their *beginning*. Capped at the backbone's position
        limit (MiniLM and tiny test models allow fewer than 512).
    batch_size : int
        Maximum texts per forward pass.
    max_batch_tokens : int
        Maximum padded tokens per forward pass. Small on purpose: on CPU, activations and attention
        scores of a large batch fall out of cache and throughput drops (measured on 2 cores: SmolLM2
        460 tok/s at 2,048 tokens per batch vs 208 tok/s at 16,384; MiniLM 5,270 vs 3,900).
    cache : FeatureCache or None
        Where computed vectors are kept and looked up (``FeatureCache.default()`` for
        ``$PLURALRM_CACHE/features``); ``None``: nothing is written anywhere.
    flush_every : int
        Write computed vectors to the cache after this many texts, so an interrupted run loses little.
    show_progress : bool
        Show a Rich progress bar with tokens/s.
    share_prompts : bool
        In :meth:`encode_conversations` with a causal backbone, run the common start of the texts of one
        prompt once and its responses on its KV cache (:mod:`.prompt_sharing`; same features).
    """

    def __init__(
        self,
        backbone: Backbone,
        *,
        spec: FeatureSpec | None = None,
        max_length: int = FEATURIZE.max_length,
        batch_size: int = FEATURIZE.batch_size,
        max_batch_tokens: int = FEATURIZE.max_batch_tokens,
        cache: FeatureCache | None = None,
        flush_every: int = FEATURIZE.flush_every,
        show_progress: bool = False,
        share_prompts: bool = FEATURIZE.share_prompts,
    ) -> None:
        if cache is not None and not isinstance(cache, FeatureCache):
            raise TypeError(f"cache must be a FeatureCache or None, got {type(cache).__name__}")
        self.backbone = backbone
        self.spec = spec or default_spec(backbone.kind)
        limit = backbone.max_positions
        self.max_length = min(max_length, limit) if limit else max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.cache = cache
        self.flush_every = flush_every
        self.show_progress = show_progress
        self.share_prompts = share_prompts
        if self.spec.pooling == "pooler":
            self._check_pooler(self.spec)

    # --- public API ------------------------------------------------------------------------------

    def format(self, prompt: Prompt, response: str) -> str:
        return format_conversation(prompt, response, self.backbone.tokenizer, self.backbone.kind)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Features of already formatted texts, shape ``(len(texts), d)``, in the caller's order."""
        return self.encode_specs(texts, [self.spec])[self.spec]

    def encode_conversations(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> np.ndarray:
        """Features of ``responses[i]`` given ``prompts[i]``."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts for {len(responses)} responses")
        texts = [self.format(p, r) for p, r in zip(prompts, responses, strict=True)]
        if not (self.share_prompts and self.backbone.kind == "causal"):
            return self.encode(texts)
        labels = [json.dumps(prompt_messages(prompt), sort_keys=True) for prompt in prompts]
        return self._encode_specs(texts, [self.spec], dict(zip(texts, labels, strict=True)))[self.spec]

    def encode_specs(
        self, texts: Sequence[str], specs: Sequence[FeatureSpec]
    ) -> dict[FeatureSpec, np.ndarray]:
        """Features for several (pooling, layer) candidates from one forward pass per batch."""
        return self._encode_specs(texts, specs, None)

    def _encode_specs(
        self, texts: Sequence[str], specs: Sequence[FeatureSpec], prompt_of: dict[str, str] | None
    ) -> dict[FeatureSpec, np.ndarray]:
        """:meth:`encode_specs`; ``prompt_of`` (text → prompt) lets texts of one prompt share its pass."""
        requested = list(specs)
        for spec in requested:
            if spec.pooling == "pooler":
                self._check_pooler(spec)
        canonical = {spec: self._canonical(spec) for spec in requested}  # layer -1 and n are one namespace
        specs = list(dict.fromkeys(canonical.values()))
        unique = list(dict.fromkeys(texts))
        keys = {text: text_key(text) for text in unique}
        caches = {spec: self.cache.namespace(self.namespace(spec)) for spec in specs} if self.cache else {}
        todo = [t for t in unique if not all(keys[t] in c for c in caches.values())] if caches else unique
        if len(todo) < len(unique):
            logger.info(
                "feature cache: %d of %d texts already computed", len(unique) - len(todo), len(unique)
            )
        computed = self._compute(todo, specs, caches, keys, prompt_of)
        position = {text: i for i, text in enumerate(unique)}
        by_spec: dict[FeatureSpec, np.ndarray] = {}
        for spec in specs:
            if not texts:
                by_spec[spec] = np.zeros((0, self.dim), np.float32)
                continue
            rows = caches[spec].get_many([keys[t] for t in unique]) if caches else computed[spec]
            by_spec[spec] = rows[[position[t] for t in texts]]
        return {spec: by_spec[canonical[spec]] for spec in requested}

    @property
    def dim(self) -> int:
        return self.backbone.hidden_size

    # --- internals -------------------------------------------------------------------------------

    def _check_pooler(self, spec: FeatureSpec) -> None:
        """``pooler`` needs an encoder that has a pooler, read at its final layer."""
        if getattr(self.backbone.model, "pooler", None) is None:
            raise ValueError(
                f"pooling 'pooler' needs an encoder with a pooler layer (BERT-style); {self.backbone.name!r} "
                "has none: use 'last' or 'mean'"
            )
        if self._canonical(spec).layer != self.backbone.num_layers:
            raise ValueError("pooling 'pooler' reads the final layer only; use layer -1")

    def _canonical(self, spec: FeatureSpec) -> FeatureSpec:
        """The spec with its layer as a non-negative index, after checking the range."""
        n = self.backbone.num_layers
        if not -(n + 1) <= spec.layer <= n:
            raise ValueError(f"layer {spec.layer} out of range for a {n}-layer backbone (use 0..{n} or -1)")
        return replace(spec, layer=spec.layer % (n + 1))

    def namespace(self, spec: FeatureSpec) -> dict:
        """What identifies features of this spec: the cache namespace (also saved with exported features)."""
        return {
            "backbone": self.backbone.fingerprint,
            "spec": asdict(self._canonical(spec)),
            "max_length": self.max_length,
            "format_version": FORMAT_VERSION,
            "chat_template": uses_chat_template(self.backbone.tokenizer, self.backbone.kind),
            "dtype": self.backbone.dtype,
        }

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each formatted text, exactly as the forward pass sees them (chat template or
        special tokens, left-truncated to ``max_length``): benchmarks count tokens and lengths with it."""
        tokenizer = self.backbone.tokenizer
        templated = uses_chat_template(tokenizer, self.backbone.kind)
        return tokenize_left_truncated(tokenizer, texts, self.max_length, add_special_tokens=not templated)

    def _forward(self, ids: list[list[int]], specs: list[FeatureSpec]) -> dict[FeatureSpec, np.ndarray]:
        import torch

        pad_id = self.backbone.tokenizer.pad_token_id
        input_ids, attention_mask = pad_right(ids, pad_id, self.backbone.device)
        final_layer = self.backbone.num_layers
        depth = max(s.layer for s in specs)
        blocks = decoder_blocks(self.backbone.model)
        with torch.inference_mode():
            if blocks is not None and min(s.layer for s in specs) >= 1 and depth < final_layer:
                hidden_by_layer = run_until(self.backbone.model, blocks, depth, input_ids, attention_mask)
            else:
                need_all = any(s.layer != final_layer for s in specs)
                output = self.backbone.model(
                    input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=need_all
                )
                hidden_by_layer = {final_layer: output.last_hidden_state}
                if need_all:
                    hidden_by_layer |= {
                        s.layer: output.hidden_states[s.layer] for s in specs if s.layer != final_layer
                    }
        out = {}
        for spec in specs:
            if spec.pooling == "pooler":
                pooled = output.pooler_output.float()
            else:
                pooled = pool_hidden(hidden_by_layer[spec.layer], attention_mask, spec.pooling)
            if spec.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[spec] = pooled.cpu().numpy()
        return out

    def _compute(
        self,
        texts: list[str],
        specs: list[FeatureSpec],
        caches: dict[FeatureSpec, NamespaceCache],
        keys: dict[str, bytes],
        prompt_of: dict[str, str] | None = None,
    ) -> dict[FeatureSpec, np.ndarray]:
        if not texts:
            return {spec: np.zeros((0, self.dim), np.float32) for spec in specs}
        ids = self.tokenize(texts)
        lengths = [len(x) for x in ids]
        results = {spec: np.zeros((len(texts), self.dim), np.float32) for spec in specs}
        pending: list[int] = []
        with TokenProgress(self.show_progress, len(texts), sum(lengths)) as advance:
            start = time.perf_counter()
            for batch, pooled in self._passes(ids, specs, [prompt_of[t] for t in texts] if prompt_of else []):
                for spec in specs:
                    results[spec][batch] = pooled[spec]
                pending.extend(batch)
                if caches and len(pending) >= self.flush_every:
                    self._flush(pending, texts, results, caches, keys)
                    pending = []
                advance(len(batch), sum(lengths[i] for i in batch), time.perf_counter() - start)
                start = time.perf_counter()
        if caches and pending:
            self._flush(pending, texts, results, caches, keys)
        return results

    def _passes(self, ids: list[list[int]], specs: list[FeatureSpec], prompts: list[str]):
        """(batch indices, pooled features) per forward pass: shared-prompt groups first, then the rest."""
        groups, rest = plan_prefix_sharing(ids, prompts) if prompts else ([], list(range(len(ids))))
        for group in groups:
            logger.debug("prompt sharing: %d tokens once for %d texts", len(group.prefix), len(group.members))
            yield from shared_prefix_passes(
                self.backbone.model,
                group,
                ids,
                specs,
                final_layer=self.backbone.num_layers,
                pad_id=self.backbone.tokenizer.pad_token_id,
                device=self.backbone.device,
                batch_size=self.batch_size,
                max_batch_tokens=self.max_batch_tokens,
            )
        rest_lengths = [len(ids[i]) for i in rest]
        for batch in length_sorted_batches(rest_lengths, self.batch_size, self.max_batch_tokens):
            members = [rest[j] for j in batch]
            yield members, self._forward([ids[i] for i in members], specs)

    @staticmethod
    def _flush(pending, texts, results, caches, keys) -> None:
        pending_keys = [keys[texts[i]] for i in pending]
        for spec, cache in caches.items():
            cache.put_many(pending_keys, results[spec][pending])
