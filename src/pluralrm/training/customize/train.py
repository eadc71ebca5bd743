"""Fine-tune a reward model's backbone: one stage of the three-stage scheme (base → general → domain RM).

``customize_reward_model(pairs, base=…)`` trains a Bradley–Terry reward model on ``pairs``, starting from
``base``: a base LM (stage 2, *general RM fine-tuning*, from ``"minilm"``, ``"smollm2"``, a directory or a hub
id) or the output of an earlier run (stage 3, *customized RM fine-tuning*, on one domain's pairs). The two
strategies of Cheng et al. (2023) that keep general ability while customizing are options:
``config.enrichment`` mixes that many general pairs per domain pair into the training data, and
``config.imitation`` adds a language-modelling loss on the chosen response (causal LMs).

The training is TRL's ``RewardTrainer`` (:mod:`.trainer`), so accelerate/DeepSpeed/FSDP launches work as for
any TRL script. A run directory holds ``checkpoints/`` while it trains; a killed run started again with the
same data, base and config resumes from the last one, and the finished model replaces the directory whole
(:mod:`.export`). Device and dtype follow the featurizer's policy (:mod:`pluralrm.backbone.device`): bf16
mixed precision on CUDA, on CPU only where it was measured faster; fp32 weights either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluralrm.atomic import write_json
from pluralrm.config import CUSTOMIZE, CustomizeConfig
from pluralrm.rewards.sequence_classifier import METADATA_FILE, is_customized_reward_model
from pluralrm.training.customize.data import enrich, pairs_digest, tokenize_pairs, validation_split
from pluralrm.training.runs import (
    RUN_FILE,
    checkpoint_to_resume,
    loss_watch,
    quiet_progress_bars,
    run_arguments,
    training_versions,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, TrainerCallback

logger = logging.getLogger(__name__)

LORA_TARGET_MODULES = "all-linear"  # every linear layer of the blocks; peft keeps the reward head trainable
HEAD_INITS = ("keep", "probe")  # CustomizeConfig.head_init; "probe": customize/probe.py


@dataclass(frozen=True)
class CustomizeResult:
    """What one ``customize`` run produced and how it went.

    Attributes
    ----------
    out_dir : Path
        The reward model directory (transformers + ``pluralrm_customize.json``).
    n_train, n_validation : int
        Training pairs (after enrichment) and held-out validation pairs.
    steps : int
        Optimizer steps of the whole schedule.
    losses : tuple of float
        Training loss at every optimizer step (including steps done before a resume).
    validation_accuracy : float or None
        Accuracy on the validation pairs at the end (None without validation pairs).
    train_seconds : float
        Wall time of ``train()`` in this process.
    train_tokens : int
        Non-padding tokens trained on in this process.
    """

    out_dir: Path
    n_train: int
    n_validation: int
    steps: int
    losses: tuple[float, ...]
    validation_accuracy: float | None
    train_seconds: float
    train_tokens: int
    resumed_from: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0


def _previous_stages(source: str | Path) -> list[dict]:
    """The stage records of ``source`` when it is itself a customize output (stage 3 from stage 2)."""
    import json

    if isinstance(source, Path) and is_customized_reward_model(source):
        return list(json.loads((source / METADATA_FILE).read_text()).get("stages", []))
    return []


def _load_model(source: str | Path, revision: str | None, seed: int):
    """The ``ForSequenceClassification`` model (fp32) and tokenizer; a fresh head is seeded by ``seed``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    from pluralrm.backbone.loading import quiet_reward_head_report

    set_seed(seed)  # the new reward head's initialization
    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
    with quiet_reward_head_report():
        model = AutoModelForSequenceClassification.from_pretrained(
            source, revision=revision, num_labels=1, dtype=torch.float32
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _lm_weight(model: PreTrainedModel, stages: list[dict], source: str | Path, revision: str | None):
    """The LM output embedding imitation needs: None when tied to the input embeddings, else the base LM's."""
    import torch
    from transformers import AutoModelForCausalLM

    if getattr(model.config, "tie_word_embeddings", False):
        return None
    root = stages[0]["base_model"] if stages else source
    logger.info("imitation: reading the untied LM head of %s", root)
    lm = AutoModelForCausalLM.from_pretrained(
        root, revision=None if stages else revision, dtype=torch.float32
    )
    return lm.get_output_embeddings().weight.detach().clone().requires_grad_(False)


def _model_writer(trainer: Any, lora: bool):
    """How to write the trained weights into a directory, on every process of a distributed run.

    Full fine-tuning goes through ``Trainer.save_model``, which gathers FSDP / DeepSpeed ZeRO-3 shards and
    writes on the main process only; a LoRA adapter is merged into the base weights first (a plain model).
    """

    def write(directory: Path) -> None:
        if lora:
            if trainer.is_world_process_zero():
                trainer.model.merge_and_unload().save_pretrained(directory)
        else:
            trainer.save_model(str(directory))

    return write


def _reward_args(config: CustomizeConfig, checkpoints: Path, device: str, dtype: str, validate: bool):
    from trl import RewardConfig

    on_cuda = device.startswith("cuda")
    return RewardConfig(
        **run_arguments(checkpoints, seed=config.seed, on_cuda=on_cuda, save_steps=config.save_steps),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        warmup_steps=0.05,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        max_length=None,  # texts arrive left-truncated to max_length already
        bf16=dtype == "bfloat16",
        activation_checkpointing=config.gradient_checkpointing,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        eval_strategy=("steps" if config.eval_steps else "epoch") if validate else "no",
        eval_steps=config.eval_steps or None,
    )


def customize_reward_model(
    pairs: Sequence[dict],
    *,
    base: str,
    out_dir: str | Path,
    config: CustomizeConfig = CUSTOMIZE,
    general: Sequence[dict] = (),
    stage: str = "",
    data_name: str = "",
    callbacks: Sequence[TrainerCallback] = (),
) -> CustomizeResult:
    """Train a reward model on ``pairs`` from ``base`` and save it as a standard reward-model directory.

    Parameters
    ----------
    pairs : sequence of dict
        Preference pairs (``prompt``, ``chosen``, ``rejected``), as :func:`pluralrm.data.load_pairs` gives.
    base : str
        Base LM (``"minilm"``, ``"smollm2"``, a directory, a hub id) or an earlier customize output.
    out_dir : str or Path
        The model directory to write (replaced whole at the end; holds checkpoints while training).
    config : CustomizeConfig
        Learning rate, epochs, imitation, enrichment, LoRA, device, … (:mod:`pluralrm.config`).
    general : sequence of dict
        General pairs for ``config.enrichment`` (ignored when it is 0).
    stage : str
        A label recorded in the metadata (``"general"``, ``"academy"``, …).
    callbacks : sequence of transformers ``TrainerCallback``
        E.g. :class:`pluralrm.training.progress.RichTrainingProgress`.

    Raises
    ------
    ValueError
        Imitation on a model without a causal LM head; too few pairs; checkpoints of another run in
        ``out_dir``; a head that is not linear in a pooled vector (:func:`.export.scoring_pooling`).
    NonFiniteLossError
        The loss became NaN or infinite (the last finite checkpoint stays in ``out_dir/checkpoints``).
    """
    import datasets
    from peft import LoraConfig
    from transformers import PrinterCallback

    from pluralrm.backbone.device import resolve_device, resolve_dtype
    from pluralrm.backbone.loading import detect_kind, resolve_backbone
    from pluralrm.training.customize.export import save_reward_model, scoring_pooling
    from pluralrm.training.customize.probe import initialize_head_by_probe
    from pluralrm.training.customize.trainer import CustomizeTrainer, PreferenceCollator

    if len(pairs) < 2:
        raise ValueError(f"customize needs at least 2 training pairs, got {len(pairs)}")
    if config.head_init not in HEAD_INITS:
        raise ValueError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {config.head_init!r}")
    out = Path(out_dir)
    if (out / "config.json").exists() and not is_customized_reward_model(out):
        raise ValueError(f"{out} holds another model; choose a new --out (customize replaces the directory)")
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    source, fingerprint, revision = resolve_backbone(base)
    stages = _previous_stages(source)

    model, tokenizer = _load_model(source, revision, config.seed)
    kind = detect_kind(model.config)
    pooling = scoring_pooling(model, kind)
    if config.imitation > 0 and kind != "causal":
        raise ValueError(f"imitation needs a causal LM (it trains the LM head); {base!r} is an encoder")
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(
        model.config, "n_positions", None
    )
    max_length = min(config.max_length, limit) if limit else config.max_length

    train_pairs, validation_pairs = validation_split(pairs, config.validation_fraction, config.seed)
    train_pairs = enrich(train_pairs, list(general), config.enrichment, config.seed)
    identity = {
        "base_fingerprint": fingerprint or f"hub:{source}",
        "train_sha256": pairs_digest(train_pairs),
        "validation_sha256": pairs_digest(validation_pairs),
        "config": {k: v for k, v in asdict(config).items() if k != "device"},
    }
    checkpoints = out / "checkpoints"
    resume = checkpoint_to_resume(checkpoints, identity)
    imitating = config.imitation > 0
    train = tokenize_pairs(train_pairs, tokenizer, kind, max_length, with_response_start=imitating)
    validation = tokenize_pairs(validation_pairs, tokenizer, kind, max_length, with_response_start=imitating)
    lora = (
        LoraConfig(
            task_type="SEQ_CLS",
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=LORA_TARGET_MODULES,
        )
        if config.lora
        else None
    )
    head_init: dict[str, Any] = {"kind": config.head_init}
    if config.head_init == "probe" and resume is None:  # a resumed run's head comes from its checkpoint
        head_init = initialize_head_by_probe(
            model,
            train,
            validation,
            tokenizer.pad_token_id,
            batch_size=config.batch_size,
            device=device,
            dtype=dtype,
        )
    watch = loss_watch(logger)
    with quiet_progress_bars():
        trainer = CustomizeTrainer(
            model=model,
            args=_reward_args(config, checkpoints, device, dtype, bool(validation)),
            data_collator=PreferenceCollator(pad_token_id=tokenizer.pad_token_id),
            train_dataset=datasets.Dataset.from_list(train),
            eval_dataset=datasets.Dataset.from_list(validation) if validation else None,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[watch, *callbacks],
            imitation=config.imitation,
            lm_weight=_lm_weight(model, stages, source, revision) if imitating else None,
        )
        trainer.remove_callback(PrinterCallback)
        checkpoints.mkdir(parents=True, exist_ok=True)
        write_json(checkpoints / RUN_FILE, identity)
        logger.info(
            "customize %s (%s): %d training pairs, %d validation pairs, %s on %s/%s",
            base,
            stage or "stage",
            len(train),
            len(validation),
            f"resuming from {resume}" if resume else "from the start",
            device,
            dtype,
        )
        start = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        seconds = time.perf_counter() - start
        accuracy = float(trainer.evaluate()["eval_accuracy"]) if validation else None
        losses = tuple(float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
        record = {
            "stage": stage or ("domain" if stages else "general"),
            "base_model": str(source) if not stages else stages[0]["base_model"],
            "started_from": base,
            **identity,
            "data": data_name,
            "n_train": len(train),
            "n_validation": len(validation),
            "n_general_mixed_in": len(train_pairs) - (len(pairs) - len(validation_pairs)),
            "validation_accuracy": accuracy,
            "head_init": head_init,
            "steps": int(trainer.state.global_step),
            "first_loss": losses[0] if losses else None,
            # Per logged step, so that a report can draw the curves (``pluralrm report``).
            "loss_history": [
                {"step": int(e["step"]), "value": float(e["loss"])}
                for e in trainer.state.log_history
                if "loss" in e
            ],
            "eval_history": [
                {"step": int(e["step"]), "value": float(e["eval_accuracy"])}
                for e in trainer.state.log_history
                if "eval_accuracy" in e
            ],
            "last_loss": losses[-1] if losses else None,
            "seconds_this_process": seconds,
            "tokens_this_process": watch.tokens,
            "device": device,
            "dtype": dtype,
            "lora_target_modules": LORA_TARGET_MODULES if config.lora else None,
            "resumed_from": Path(resume).name if resume else None,
        }
        metadata = save_reward_model(
            _model_writer(trainer, config.lora),
            tokenizer,
            out,
            {"stages": [*stages, record], "versions": training_versions()},
            pooling=pooling,
            kind=kind,
            max_length=max_length,
            main_process=trainer.is_world_process_zero(),
        )
    del output
    return CustomizeResult(
        out_dir=out,
        n_train=len(train),
        n_validation=len(validation),
        steps=record["steps"],
        losses=losses,
        validation_accuracy=accuracy,
        train_seconds=seconds,
        train_tokens=watch.tokens,
        resumed_from=record["resumed_from"],
        metadata=metadata,
    )


__all__ = ["HEAD_INITS", "LORA_TARGET_MODULES", "CustomizeResult", "customize_reward_model"]
