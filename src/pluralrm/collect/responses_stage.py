"""The response stage: N responses per prompt from one or several generators, system prompts and
temperatures (Hu et al. 2024, step 2), through :mod:`pluralrm.generate`.

Each generator setting writes its own wide file with :func:`pluralrm.generate.write_generations`, which
appends per prompt with fsync and resumes after a kill (refusing a file written with other parameters);
this module only chooses the settings and turns the wide files into one record per response with its
provenance. Existing wide files (an earlier ``pluralrm generate`` run) can be imported instead of sampling.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pluralrm.collect.provenance import provenance, record_id
from pluralrm.config import COLLECT, GENERATE
from pluralrm.data.errors import DataValidationError
from pluralrm.data.io import iter_raw_records
from pluralrm.generate.prompts import PromptRecord, prompt_key
from pluralrm.generate.run import ProgressCallback, write_generations
from pluralrm.generate.sampling import Generator, SamplingParams, prompt_seed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratorSetting:
    """One way of sampling responses: a model (local, or served at ``endpoint``), a system prompt, a
    temperature, and how many responses per prompt."""

    model: str = GENERATE.model
    endpoint: str | None = None
    system_prompt: str | None = None
    temperature: float = COLLECT.temperatures[0]
    n: int = COLLECT.n
    max_new_tokens: int = COLLECT.max_new_tokens
    top_p: float = GENERATE.top_p
    seed: int = COLLECT.seed

    @property
    def key(self) -> str:
        """A short name fixed by the setting (its output file's name)."""
        return record_id(asdict(self))[:10]

    def params(self) -> SamplingParams:
        return SamplingParams.from_config(self)


def settings_grid(
    models: Sequence[str],
    *,
    temperatures: Sequence[float] = COLLECT.temperatures,
    system_prompts: Sequence[str | None] = (None,),
    endpoint: str | None = None,
    n: int = COLLECT.n,
    max_new_tokens: int = COLLECT.max_new_tokens,
    seed: int = COLLECT.seed,
) -> list[GeneratorSetting]:
    """Every combination of model × system prompt × temperature (diverse responses, as the paper asks)."""
    return [
        GeneratorSetting(model, endpoint, system, t, n, max_new_tokens, seed=seed)
        for model in models
        for system in system_prompts
        for t in temperatures
    ]


def build_generator(setting: GeneratorSetting) -> Generator:
    """A local LM or an endpoint client for ``setting`` (the generate verb's own builder)."""
    from pluralrm.generate.run import make_generator

    return make_generator(replace(GENERATE, model=setting.model), setting.endpoint)


def _prompt_records(prompts: Sequence[dict[str, Any]]) -> list[PromptRecord]:
    return [PromptRecord(id=p["prompt_id"], prompt=p["prompt"], subset=p.get("subset")) for p in prompts]


def responses_from_wide(path: Path, prompt_ids: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One response record per response of a wide file (``pluralrm generate``'s output).

    ``prompt_ids`` maps a prompt's content key to the prompt stage's id; prompts not in it are left out
    (an imported file may hold more prompts than the stage kept). Without it every prompt is kept.
    """
    out: list[dict[str, Any]] = []
    for location, record in iter_raw_records(path):
        if not isinstance(record, dict) or "prompt" not in record:
            raise DataValidationError(location, "expected a wide record with a 'prompt'", "prompt")
        key = prompt_key(record["prompt"])
        prompt_id = record_id("prompt", key) if prompt_ids is None else prompt_ids.get(key)
        if prompt_id is None:
            continue
        generation = record.get("generation") or {}
        i = 1
        while f"response_{i}" in record:
            text = record[f"response_{i}"]
            if not isinstance(text, str):
                raise DataValidationError(location, "expected a string", f"response_{i}")
            seed = generation.get("seed")
            out.append(
                {
                    "response_id": record_id("response", path.name, prompt_id, i),
                    "prompt_id": prompt_id,
                    "prompt": record["prompt"],
                    "text": text,
                    "finish": record.get(f"response_{i}_finish", "stop"),
                    "model": record.get(f"response_{i}_model") or generation.get("model"),
                    "provenance": provenance(
                        "responses",
                        parents=[prompt_id],
                        source=path.name,
                        model=record.get(f"response_{i}_model") or generation.get("model"),
                        params=generation,
                        seed=prompt_seed(seed, str(record.get("id"))) if seed is not None else None,
                    ),
                }
            )
            i += 1
    return out


def generate_responses(
    prompts: Sequence[dict[str, Any]],
    out_dir: str | Path,
    settings: Sequence[GeneratorSetting],
    *,
    generators: Mapping[GeneratorSetting, Generator] | None = None,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Sample every setting's responses for every prompt into ``out_dir/gen-<key>.jsonl`` (resumable).

    Parameters
    ----------
    prompts : prompt records of the prompt stage
    settings : generator settings (:func:`settings_grid`)
    generators : mapping, optional
        A ready generator per setting (a loaded model, a test stand-in); others are built, one per
        (model, endpoint), and closed at the end.

    Returns
    -------
    list of Path
        The wide files, one per setting, in order.
    """
    out_dir = Path(out_dir)
    records = _prompt_records(prompts)
    built: dict[tuple[str, str | None], Generator] = {}
    files = []
    try:
        for setting in settings:
            generator = (generators or {}).get(setting)
            if generator is None:
                which = (setting.model, setting.endpoint)
                if which not in built:
                    built[which] = build_generator(setting)
                generator = built[which]
            path = out_dir / f"gen-{setting.key}.jsonl"
            summary = write_generations(records, path, generator, setting.params(), progress=progress)
            logger.info("%s: %d prompts (%d were done before)", path, summary.n_prompts, summary.n_skipped)
            files.append(path)
    finally:
        for generator in built.values():
            close = getattr(generator, "close", None)
            if close is not None:
                close()
    return files
