"""The prompt stage: prompts from files and datasets, optional self-instruct expansion, near-duplicate removal
by embedding similarity, and named selection rules (Hu et al. 2024, step 1).

Every prompt record is ``{"prompt_id", "prompt", "subset", "provenance"}``; ``prompt_id`` is fixed by the
prompt's content, so the same prompt read from two sources is one record and a re-run keeps every id.
The selection rules are small classes with a ``name`` (the stage's table counts records in and out per
rule): :class:`NearDuplicates`, :class:`ClusterCoverage` and :class:`RewardSelection`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pluralrm.collect.provenance import provenance, record_id
from pluralrm.config import COLLECT
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.generate.prompts import load_prompts, prompt_key

if TYPE_CHECKING:
    from pluralrm.data.records import Prompt
    from pluralrm.generate.sampling import Generator
    from pluralrm.rewards.protocols import FeatureEncoder

logger = logging.getLogger(__name__)


def prompt_text(prompt: Prompt) -> str:
    """A prompt as one string (a conversation's turns joined), for embedding and for examples."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m.get("content", "")) for m in prompt)


def _open_dataset_dir(path: Path, split: str | None) -> Any:
    """A local Hugging Face dataset: a ``save_to_disk`` directory, or a directory of data files."""
    import datasets

    try:
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(str(path))
    except Exception as error:  # datasets raises many types; all mean "not a dataset"
        raise DataValidationError(
            RecordLocation(str(path)), f"not a readable dataset directory: {error}"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) == 1:
            return next(iter(loaded.values()))
        if split not in loaded:
            raise DataValidationError(
                RecordLocation(str(path)), f"has splits {sorted(loaded)}; name one as '{path}:SPLIT'"
            )
        return loaded[split]
    return loaded


def load_sources(
    sources: Sequence[str | Path], *, limit: int | None = None, skip_invalid: bool = False
) -> list[dict[str, Any]]:
    """Unique prompts of every source, in order, as prompt records.

    Parameters
    ----------
    sources : sequence of str or Path
        Files :func:`pluralrm.generate.load_prompts` reads (pairs, ranked, DSP, HH, wide, plain prompt
        JSONL/Parquet, ``.txt``), local dataset directories (``dir`` or ``dir:split``), or Hugging Face
        dataset names (``owner/name[:split]``; need the network or the local hub cache).
    limit : int, optional
        At most this many prompts from each source.
    """
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for source in sources:
        path, _, split = str(source).partition(":") if not Path(source).exists() else (str(source), "", "")
        readable: Any = source
        if Path(path).is_dir():
            readable = _open_dataset_dir(Path(path), split or None)
        for prompt in load_prompts(readable, limit=limit, skip_invalid=skip_invalid):
            key = prompt_key(prompt.prompt)
            if key in seen:
                continue
            seen.add(key)
            records.append(
                {
                    "prompt_id": record_id("prompt", key),
                    "prompt": prompt.prompt,
                    "subset": prompt.subset,
                    "provenance": provenance("prompts", parents=[prompt.id], source=str(source)),
                }
            )
    if not records:
        raise DataValidationError(RecordLocation(", ".join(map(str, sources))), "no prompts found")
    return records


SELF_INSTRUCT = (
    "Here are requests that users sent to an AI assistant:\n{examples}\n\n"
    "Write one new request a user might send, different from these in topic and form. "
    "Reply with the request only."
)


def _first_request(prompt: Prompt) -> str:
    """A prompt as one example request: itself, or a conversation's first user turn (one line)."""
    if isinstance(prompt, str):
        text = prompt
    else:
        text = next((str(m.get("content", "")) for m in prompt if m.get("role") == "user"), "")
    return " ".join(text.split())


def _clean_request(text: str) -> str:
    """The LM's new request: its first line that is not a lead-in ("Here's a new request:")."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().endswith(":")), "")
    return re.sub(r"^(?:\d+[.)]\s*|[-*]\s*|request:\s*)", "", line, flags=re.IGNORECASE).strip().strip('"')


def expand_self_instruct(
    prompts: Sequence[dict[str, Any]],
    generator: Generator,
    n_new: int,
    *,
    examples: int = 3,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = COLLECT.seed,
) -> list[dict[str, Any]]:
    """New prompts written by an LM from a few sampled examples each (self-instruct, Wang et al. 2023).

    Each new prompt's provenance names the LM, its sampling parameters, the seed and the example prompts
    it was shown. Empty replies and prompts already present are dropped, so fewer than ``n_new`` may come
    back.

    Parameters
    ----------
    prompts : prompt records (a conversation is shown by its first user turn)
    generator : pluralrm.generate.Generator
        A :class:`~pluralrm.generate.local.LocalGenerator`, an endpoint, or a test stand-in.
    """
    from pluralrm.generate.sampling import SamplingParams

    pool = [(p, request) for p in prompts if (request := _first_request(p["prompt"]))]
    if n_new <= 0 or not pool:
        return []
    params = SamplingParams(n=1, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    rng = np.random.default_rng(seed)
    seen = {prompt_key(p["prompt"]) for p in prompts}
    out: list[dict[str, Any]] = []
    for i in range(n_new):
        shown = [pool[j] for j in rng.choice(len(pool), size=min(examples, len(pool)), replace=False)]
        listing = "\n".join(f"{k}. {request}" for k, (_, request) in enumerate(shown, start=1))
        messages = [{"role": "user", "content": SELF_INSTRUCT.format(examples=listing)}]
        [completion] = generator.complete(messages, params, (seed + i) % 2**31)[:1]
        text = _clean_request(completion.text)
        if not text or text in seen:
            continue
        seen.add(text)
        out.append(
            {
                "prompt_id": record_id("prompt", text),
                "prompt": text,
                "subset": None,
                "provenance": provenance(
                    "prompts",
                    parents=[p["prompt_id"] for p, _ in shown],
                    source="self-instruct",
                    model=generator.model,
                    params=params.as_dict(),
                    seed=(seed + i) % 2**31,
                ),
            }
        )
    logger.info("self-instruct: %d new prompts from %d requests", len(out), n_new)
    return out


def embed_prompts(prompts: Sequence[dict[str, Any]], featurizer: FeatureEncoder) -> np.ndarray:
    """Unit-length embeddings ``(n, d)`` of the prompts' texts (cosine similarity = dot product)."""
    H = np.asarray(featurizer.encode([prompt_text(p["prompt"]) for p in prompts]), dtype=np.float64)
    norms = np.linalg.norm(H, axis=1, keepdims=True)
    return H / np.where(norms > 0, norms, 1.0)


@dataclass(frozen=True)
class NearDuplicates:
    """Drop a prompt whose embedding's cosine similarity to an earlier kept prompt is ``>= threshold``.

    Greedy in input order, so the first of a group of paraphrases survives (earlier sources win).
    """

    threshold: float = COLLECT.dedup_threshold
    name: str = "near-duplicates"

    def keep(self, E: np.ndarray) -> np.ndarray:
        """Boolean mask over the rows of unit embeddings ``E`` of shape (n, d)."""
        mask = np.zeros(len(E), dtype=bool)
        kept: list[int] = []
        for i in range(len(E)):
            if kept and float(np.max(E[kept] @ E[i])) >= self.threshold:
                continue
            mask[i] = True
            kept.append(i)
        return mask


def kmeans(E: np.ndarray, k: int, *, seed: int = 0, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centres) of Lloyd's k-means with k-means++ seeding; ``k`` is capped at ``len(E)``."""
    rng = np.random.default_rng(seed)
    k = min(k, len(E))
    centres = [E[rng.integers(len(E))]]
    for _ in range(1, k):
        d2 = np.min(((E[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        probabilities = d2 / d2.sum() if d2.sum() > 0 else np.full(len(E), 1 / len(E))
        centres.append(E[rng.choice(len(E), p=probabilities)])
    C = np.asarray(centres)
    labels = np.zeros(len(E), dtype=int)
    for _ in range(iterations):
        labels = np.argmin(((E[:, None, :] - C[None]) ** 2).sum(-1), axis=1)
        moved = np.array([E[labels == j].mean(0) if np.any(labels == j) else C[j] for j in range(k)])
        if np.allclose(moved, C):
            break
        C = moved
    return labels, C


@dataclass(frozen=True)
class ClusterCoverage:
    """Keep at most ``max_prompts``, taken in turn from ``n_clusters`` k-means clusters of the embeddings
    (each cluster's most central prompts first), so a small selection still covers every kind of prompt."""

    max_prompts: int
    n_clusters: int = COLLECT.n_clusters
    seed: int = COLLECT.seed
    name: str = "cluster-coverage"

    def keep(self, E: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(E), dtype=bool)
        if len(E) <= self.max_prompts:
            mask[:] = True
            return mask
        labels, C = kmeans(E, self.n_clusters, seed=self.seed)
        queues = []
        for j in range(len(C)):
            members = np.flatnonzero(labels == j)
            distance = ((E[members] - C[j]) ** 2).sum(1)
            queues.append(list(members[np.argsort(distance, kind="stable")]))
        taken = 0
        while taken < self.max_prompts:
            for queue in queues:
                if queue and taken < self.max_prompts:
                    mask[queue.pop(0)] = True
                    taken += 1
        return mask


@dataclass(frozen=True)
class RewardSelection:
    """Keep the ``keep`` prompts whose sampled responses' rewards (from the current reward) spread most
    (``rule="spread"``: the reward cannot yet tell them apart well, so their pairs teach most) or are lowest
    (``rule="low"``: the policy does worst there). Prompts without rewards are dropped."""

    keep_n: int
    rule: str = "spread"
    name: str = "reward-selection"

    def __post_init__(self) -> None:
        if self.rule not in ("spread", "low"):
            raise ValueError(f"rule must be 'spread' or 'low', got {self.rule!r}")

    def keep(self, prompt_ids: Sequence[str], rewards: Mapping[str, Sequence[float]]) -> np.ndarray:
        """Boolean mask over ``prompt_ids``; ``rewards`` maps a prompt id to its responses' rewards."""
        score = np.full(len(prompt_ids), -np.inf)
        for i, prompt_id in enumerate(prompt_ids):
            values = np.asarray(rewards.get(prompt_id, ()), dtype=float)
            if len(values):
                score[i] = values.std() if self.rule == "spread" else -values.mean()
        order = [i for i in np.argsort(-score, kind="stable") if np.isfinite(score[i])][: self.keep_n]
        mask = np.zeros(len(prompt_ids), dtype=bool)
        mask[order] = True
        return mask


def rewards_by_prompt(records: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Prompt id → rewards, from ranked records with ``rewards`` (e.g. ``pluralrm rank``'s output read by
    :func:`pluralrm.data.load_ranked`); the id is the prompt stage's content id."""
    out: dict[str, list[float]] = {}
    for record in records:
        if record.get("rewards"):
            out[record_id("prompt", prompt_key(record["prompt"]))] = [float(r) for r in record["rewards"]]
    return out
