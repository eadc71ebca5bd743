"""Sampling responses from a local causal LM with transformers.

One prompt's N responses come from one ``generate`` call (``num_return_sequences``; split into chunks of
``batch_size`` sequences when N is larger), after seeding torch from (seed, prompt id). Putting several
prompts in one call would share one random stream between them, so a prompt's samples would depend on
its neighbours, and a resumed run could not reproduce the uninterrupted one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pluralrm.backbone.device import resolve_device, resolve_dtype, torch_dtype
from pluralrm.backbone.formatting import chat_template_text, render_plain
from pluralrm.backbone.loading import BackboneNotFoundError, resolve_backbone
from pluralrm.config import GENERATE
from pluralrm.data.transcripts import Message
from pluralrm.generate.sampling import Completion, Finish, SamplingParams

if TYPE_CHECKING:
    import torch
    from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def render_for_generation(messages: list[Message], tokenizer: PreTrainedTokenizerBase) -> tuple[str, bool]:
    """The prompt text that makes the model speak as the assistant, and whether it holds special tokens.

    The chat template's own generation prompt (``add_generation_prompt=True``) when the tokenizer has a
    template, else the plain "User:/Assistant:" rendering the featurizer uses, ending in "Assistant:".
    """
    if getattr(tokenizer, "chat_template", None):
        return chat_template_text(tokenizer, messages, add_generation_prompt=True), True
    return render_plain(messages) + "\nAssistant:", False


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


class LocalGenerator:
    """A causal LM loaded with ``AutoModelForCausalLM``, answering one prompt at a time.

    Parameters
    ----------
    model : str
        ``"smollm2"``, a transformers directory or a hub id, resolved as backbones are
        (:mod:`pluralrm.backbone.loading`).
    device, dtype : str
        As for backbones: ``auto`` picks CUDA when present, bf16 where it is measured faster.
    batch_size : int
        Most sequences per ``generate`` call; a prompt's N responses are split into such chunks.
    """

    backend = "local"

    def __init__(
        self,
        model: str = GENERATE.model,
        *,
        device: str = GENERATE.device,
        dtype: str = GENERATE.dtype,
        batch_size: int = GENERATE.batch_size,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        source, self.fingerprint, revision = resolve_backbone(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
            self.lm = AutoModelForCausalLM.from_pretrained(
                source, revision=revision, dtype=torch_dtype(self.dtype)
            )
        except (OSError, ValueError) as error:
            raise BackboneNotFoundError(f"could not load causal LM {model!r}: {error}") from None
        if not self.fingerprint:  # a hub id: name and revision (the commit is not looked up here)
            self.fingerprint = f"hub:{source}@{revision or 'default'}"
        self.tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.lm.to(self.device)  # type: ignore[arg-type]  # transformers types `to` through a decorator
        self.lm.eval()
        self.eos_ids = _eos_ids(self.lm, self.tokenizer)

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this generator."""
        return {
            "backend": self.backend,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "device": self.device,
            "dtype": self.dtype,
            "batch_size": self.batch_size,
        }

    def _generation_config(self, params: SamplingParams, n: int) -> GenerationConfig:
        from transformers import GenerationConfig

        sampling = (
            {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0}
            if params.temperature > 0
            else {"do_sample": False}
        )
        return GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=n,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids) or None,
            **sampling,
        )

    def complete(self, messages: list[Message], params: SamplingParams, seed: int) -> list[Completion]:
        """``params.n`` responses to one conversation, reproducible from ``seed`` (for a fixed batch_size)."""
        import torch

        text, has_special = render_for_generation(messages, self.tokenizer)
        encoded = self.tokenizer(text, return_tensors="pt", add_special_tokens=not has_special)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        prompt_length = encoded["input_ids"].shape[1]
        n_greedy = 1 if params.temperature == 0 else params.n  # greedy: N copies of one answer
        completions: list[Completion] = []
        for chunk, start in enumerate(range(0, n_greedy, self.batch_size)):
            size = min(self.batch_size, n_greedy - start)
            torch.manual_seed(seed + chunk)
            with torch.inference_mode():
                output = self.lm.generate(  # type: ignore[misc]  # transformers' Auto* return type lacks it
                    **encoded, generation_config=self._generation_config(params, size)
                )
            completions.extend(self._decode(output[:, prompt_length:], params.max_new_tokens))
        if n_greedy < params.n:
            completions = completions * params.n
        return completions

    def _decode(self, generated: torch.Tensor, max_new_tokens: int) -> list[Completion]:
        """Cut each row at its first end-of-sequence token; a row without one was cut by the limit."""
        out = []
        for row in generated.tolist():
            end = next((i for i, token in enumerate(row) if token in self.eos_ids), None)
            tokens = row if end is None else row[:end]
            finish: Finish = "length" if end is None and len(row) >= max_new_tokens else "stop"
            text = str(self.tokenizer.decode(tokens, skip_special_tokens=True)).strip()  # one row: a str
            out.append(Completion(text=text, finish=finish, model=self.model, tokens=len(tokens)))
        return out
