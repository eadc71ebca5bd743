"""Fine-tune a policy on chosen responses (the SFT step of a RAFT round): LoRA with TRL's ``SFTTrainer``.

Input is what ``pluralrm.select`` exports for best-of-N: one JSON record per prompt,
``{"messages": [...prompt turns..., {"role": "assistant", "content": best}], "id": ..., "reward": ...}``.
Each record becomes TRL's *conversational prompt-completion* form (``prompt`` = every turn but the last,
``completion`` = the last). TRL then trains only on the completion's tokens (``completion_only_loss``) for
any chat template. The alternative, ``assistant_only_loss`` on ``messages``, needs ``{% generation %}``
markers, which TRL only supplies for the templates it knows (SmolLM2's is not among them).

The output directory of a run::

    OUT/adapter/            the LoRA adapter (peft), small
    OUT/merged/             base + adapter merged: a plain transformers causal-LM directory (safetensors +
                            tokenizer) that ``AutoModelForCausalLM.from_pretrained`` and the generator load
    OUT/pluralrm_sft.json   base model, data sha256, config, first/last training loss, versions
    OUT/checkpoints/        only while a run is unfinished: a killed run resumes from the last one

torch, transformers, peft and trl are imported inside functions: importing this module is free.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluralrm.atomic import apply_umask_modes, temp_dir_beside, write_json
from pluralrm.config import FINETUNE, FinetuneConfig
from pluralrm.training.runs import (
    RUN_FILE,
    NonFiniteLossError,
    checkpoint_to_resume,
    loss_watch,
    quiet_progress_bars,
    replace_dir,
    run_arguments,
    training_versions,
)
from pluralrm.training.sft_data import load_sft_examples

if TYPE_CHECKING:
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

METADATA_FILE = "pluralrm_sft.json"
# Every linear layer of the blocks (attention q/k/v/o and the MLP), never the LM head: adapting all of them
# is what lets LoRA match full fine-tuning (QLoRA, Dettmers et al. 2023, sec. 4), and peft's "all-linear"
# finds them in any architecture, so no per-model module names live here.
LORA_TARGET_MODULES = "all-linear"


@dataclass(frozen=True)
class FinetuneResult:
    """What one SFT run produced and how it went.

    Attributes
    ----------
    out_dir, adapter_dir, merged_dir, metadata_path : Path
        The run directory, the LoRA adapter, the merged model directory and the metadata file.
    n_records : int
        Training records (after dropping any that ``max_length`` left without completion tokens).
    steps : int
        Optimizer steps of the whole schedule.
    losses : tuple of float
        Training loss at every optimizer step, including steps done before a resume.
    train_seconds : float
        Wall time of training in this process (a resumed run counts only the part it did).
    train_tokens : int
        Non-padding tokens (prompt and completion) trained on in this process.
    resumed_from : str or None
        The checkpoint this run continued from, if any.
    """

    out_dir: Path
    adapter_dir: Path
    merged_dir: Path
    metadata_path: Path
    n_records: int
    steps: int
    losses: tuple[float, ...]
    train_seconds: float
    train_tokens: int
    resumed_from: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def first_loss(self) -> float:
        return self.losses[0]

    @property
    def last_loss(self) -> float:
        return self.losses[-1]

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0


def _loss_watch():
    """The shared loss watch (:func:`pluralrm.training.runs.loss_watch`), logging to this module."""
    return loss_watch(logger)


def _run_identity(fingerprint: str, digest: str, config: FinetuneConfig) -> dict[str, Any]:
    """What decides a run's result: base weights (by content: ./m and m are one model), data, config."""
    return {
        "base_fingerprint": fingerprint,
        "data_sha256": digest,
        "config": asdict(config),
    }


def _sft_args(config: FinetuneConfig, checkpoints: Path, device: str):
    import torch
    from trl import SFTConfig

    on_cuda = device.startswith("cuda")
    return SFTConfig(
        **run_arguments(checkpoints, seed=config.seed, on_cuda=on_cuda, save_steps=config.save_steps),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        max_length=config.max_length,
        packing=False,
        completion_only_loss=True,
        # fp32 on CPU (bf16 autocast there is only faster on some CPUs, and this is not where to guess);
        # bf16 mixed precision on GPUs that have it, with fp32 master weights.
        bf16=on_cuda and torch.cuda.is_bf16_supported(),
        # TRL turns checkpointing on by default; for models this size the recomputation only costs time.
        activation_checkpointing=False,
    )


def _make_trainer(
    examples: list[dict],
    source: str | Path,
    revision: str | None,
    config: FinetuneConfig,
    checkpoints: Path,
    device: str,
    callback: TrainerCallback,
):
    """TRL's ``SFTTrainer`` on a fp32 copy of the base model with a fresh LoRA adapter (seeded by TRL)."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
    if not tokenizer.chat_template:
        raise ValueError(f"{source}: the tokenizer has no chat template, so chat turns cannot be formatted")
    base = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype=torch.float32)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=LORA_TARGET_MODULES,
        bias="none",
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=base,
        args=_sft_args(config, checkpoints, device),
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the library logs instead
    return trainer


def _save_models(trainer: Any, out: Path) -> tuple[Path, Path]:
    """Write the adapter, then the merged model with the tokenizer; each directory appears whole."""
    adapter_dir, merged_dir = out / "adapter", out / "merged"
    build = temp_dir_beside(adapter_dir)
    trainer.model.save_pretrained(build)
    apply_umask_modes(build)  # save_pretrained writes its weights at 0600
    replace_dir(build, adapter_dir)
    merged = trainer.model.merge_and_unload()  # W + (alpha / r) B A, a plain transformers model again
    build = temp_dir_beside(merged_dir)
    merged.save_pretrained(build)
    trainer.processing_class.save_pretrained(build)
    apply_umask_modes(build)
    replace_dir(build, merged_dir)
    return adapter_dir, merged_dir


def finetune_sft(
    dataset_path_or_records: str | Path | Iterable[dict],
    *,
    model: str,
    out_dir: str | Path,
    config: FinetuneConfig = FINETUNE,
) -> FinetuneResult:
    """Fine-tune ``model`` with LoRA on chosen responses; save the adapter and a merged model directory.

    Parameters
    ----------
    dataset_path_or_records : str, Path or iterable of dict
        A ``.jsonl``/``.json``/``.parquet`` file (``.gz`` ok) or the records themselves, each
        ``{"messages": [...prompt turns..., {"role": "assistant", "content": answer}], ...}``; other
        fields (``id``, ``reward``) are ignored. Every record is checked before any model is loaded.
    model : str
        ``"smollm2"``, a local causal-LM directory (e.g. the ``merged`` directory of an earlier round) or a
        hub id, resolved as for backbones. Its tokenizer must have a chat template.
    out_dir : str or Path
        Run directory (layout in the module docstring). If it holds checkpoints of an unfinished run of the
        same data, model and config, training resumes from the last one; of a different run, an error.
    config : FinetuneConfig
        Epochs, learning rate, batch, LoRA rank/alpha/dropout, seed, device (see :mod:`pluralrm.config`).

    Raises
    ------
    DataValidationError
        A record without ``messages`` ending in a non-empty assistant turn (file, line and field named).
    NonFiniteLossError
        The loss became NaN or infinite.
    """
    from pluralrm.backbone.device import resolve_device
    from pluralrm.backbone.loading import resolve_backbone

    examples, digest, data_name = load_sft_examples(dataset_path_or_records)
    out = Path(out_dir)
    checkpoints = out / "checkpoints"
    device = resolve_device(config.device)
    source, fingerprint, revision = resolve_backbone(model)
    identity = _run_identity(fingerprint or f"hub:{source}", digest, config)
    resume = checkpoint_to_resume(checkpoints, identity)
    watch = _loss_watch()
    with quiet_progress_bars():
        trainer = _make_trainer(examples, source, revision, config, checkpoints, device, watch)
        n_records = len(trainer.train_dataset)
        if n_records < len(examples):
            logger.warning(
                "%d of %d records kept no answer token within max_length=%d and were dropped",
                len(examples) - n_records,
                len(examples),
                config.max_length,
            )
        checkpoints.mkdir(parents=True, exist_ok=True)
        write_json(checkpoints / RUN_FILE, identity)
        logger.info(
            "SFT of %s on %s: %d records, %s",
            model,
            data_name,
            n_records,
            f"resuming from {resume}" if resume else "from the start",
        )
        output = trainer.train(resume_from_checkpoint=resume)
        adapter_dir, merged_dir = _save_models(trainer, out)
    losses = tuple(float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
    train = {
        "steps": int(trainer.state.global_step),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "seconds_this_process": float(output.metrics.get("train_runtime", 0.0)),
        "tokens_this_process": watch.tokens,
        "resumed_from": Path(resume).name if resume else None,
    }
    metadata = {
        "format": "pluralrm-sft",
        "base_model": model,
        **identity,
        "data": data_name,
        "n_records": n_records,
        "lora_target_modules": LORA_TARGET_MODULES,
        "device": device,
        "train": train,
        "versions": training_versions(),
    }
    write_json(out / METADATA_FILE, metadata)
    shutil.rmtree(checkpoints)  # the run is complete: the adapter holds what the checkpoints did
    return FinetuneResult(
        out_dir=out,
        adapter_dir=adapter_dir,
        merged_dir=merged_dir,
        metadata_path=out / METADATA_FILE,
        n_records=n_records,
        steps=train["steps"],
        losses=losses,
        train_seconds=train["seconds_this_process"],
        train_tokens=watch.tokens,
        resumed_from=train["resumed_from"],
        metadata=metadata,
    )


__all__ = [
    "LORA_TARGET_MODULES",
    "METADATA_FILE",
    "FinetuneResult",
    "NonFiniteLossError",
    "finetune_sft",
]
