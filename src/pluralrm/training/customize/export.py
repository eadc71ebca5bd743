"""Save a trained reward model as a standard Hugging Face directory plus pluralrm's provenance.

The directory loads with ``AutoModelForSequenceClassification.from_pretrained`` and its tokenizer (one
scalar head: what TRL and plain transformers expect; OpenRLHF for causal LMs) and with
``RewardModel.from_pretrained`` (:mod:`pluralrm.rewards.sequence_classifier`). The tokenizer is saved with
pluralrm's truncation side and length, and an EOS token and a chat template where the base lacks them
(:mod:`.portable`). ``pluralrm_customize.json`` records the stages that made it, the data fingerprints, how
texts are rendered and pooled, the feature namespace its head reads — taken from a featurizer built on the
saved files themselves, so the recorded namespace is the one scoring will find — and which of the field's
loaders read the folder as pluralrm scores it (``export.loads``; a loader that would not is named in a
warning). The directory appears whole: it is written beside its target and renamed into place.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluralrm.atomic import apply_umask_modes, write_json
from pluralrm.rewards.sequence_classifier import FORMAT, METADATA_FILE
from pluralrm.training.customize.portable import align_eos, export_tokenizer, loaders, warn_where_not_loadable
from pluralrm.training.runs import replace_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from pluralrm.backbone.spec import Pooling


def scoring_pooling(model: Any, kind: str) -> Pooling:
    """Which featurizer pooling reproduces the vector this ``ForSequenceClassification`` head reads.

    Causal LMs score the last real token's final hidden state (``"last"``); BERT-style encoders score
    their pooler output (``"pooler"``). Other heads (RoBERTa's, DistilBERT's) apply a non-linear layer of
    their own before the score, so their reward is not a linear head on features: refused.
    """
    import torch

    if kind == "causal" and isinstance(getattr(model, "score", None), torch.nn.Linear):
        return "last"
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, torch.nn.Linear) and getattr(base, "pooler", None) is not None:
        return "pooler"
    raise ValueError(
        f"{type(model).__name__}: customize supports causal LMs (a linear 'score' head on the last token) "
        "and BERT-style encoders (a linear 'classifier' on the pooler output); this head is neither"
    )


def save_reward_model(
    write_model: Callable[[Path], None],
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    metadata: dict,
    *,
    pooling: Pooling,
    kind: str,
    max_length: int,
    main_process: bool = True,
) -> dict:
    """Write the model (``write_model(directory)``), tokenizer and metadata to ``out_dir``, replaced whole.

    In a distributed run every process calls this (gathering sharded weights needs them all); only the
    main one (``main_process``) writes the rest and renames the directory into place.
    """
    from pluralrm.backbone import FeatureSpec, Featurizer, load_backbone

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = out_dir.parent / f".{out_dir.name}.build"
    if main_process and build.exists():
        shutil.rmtree(build)  # left by a run that died while saving
    build.mkdir(exist_ok=True)
    write_model(build)
    if not main_process:
        return metadata
    try:
        tokenizer, tokenizer_record = export_tokenizer(tokenizer, kind, max_length)
        tokenizer.save_pretrained(build)
        align_eos(build, tokenizer)
        loads = loaders(kind, pooling, tokenizer_record)
        backbone = load_backbone(str(build), device="cpu", dtype="float32")
        spec = FeatureSpec(pooling=pooling, layer=-1)
        featurizer = Featurizer(backbone, spec=spec, max_length=max_length, cache=None)
        metadata = {
            "format": FORMAT,
            **metadata,
            "scoring": {"pooling": pooling, "kind": backbone.kind, "max_length": featurizer.max_length},
            "namespace": featurizer.namespace(spec),
            "export": {"tokenizer": tokenizer_record, "loads": loads},
        }
        write_json(build / METADATA_FILE, metadata)
        apply_umask_modes(build)  # save_pretrained writes its weights at 0600
        replace_dir(build, out_dir)
    finally:
        if build.exists():
            shutil.rmtree(build)
    warn_where_not_loadable(out_dir, loads)
    return metadata


__all__ = ["save_reward_model", "scoring_pooling"]
