"""The collection pipeline: prompts → responses → filtering, each stage a dataset under one project directory.

Layout of ``PROJECT``::

    prompts.jsonl            prompts.manifest.json     (stage 1)
    responses/gen-<key>.jsonl (+ .meta.json)            (stage 2, one resumable file per generator setting)
    responses.jsonl          responses.manifest.json
    pairs-to-label.jsonl     ai-labelled.jsonl         (stage 3: for people / decided by the AI judge)
    dropped.jsonl            filter.manifest.json      (what the rules removed, and why)

Stage 4, labelling, is the labelling app (``pluralrm label import PROJECT pairs-to-label.jsonl``).
Each stage reads only the previous stage's output and needs its manifest to say ``complete``; a stage whose
inputs (by content hash) and settings are unchanged is skipped unless forced, and generation resumes where a
killed run stopped. Outputs are written atomically, so a stage's files are always whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import pluralrm.collect.filters as F
from pluralrm.collect.prompts_stage import (
    ClusterCoverage,
    NearDuplicates,
    RewardSelection,
    embed_prompts,
    expand_self_instruct,
    load_sources,
)
from pluralrm.collect.provenance import (
    FilterCount,
    StageManifest,
    file_hash,
    provenance,
    read_manifest,
    read_records,
    write_manifest,
    write_records,
)
from pluralrm.collect.responses_stage import GeneratorSetting, generate_responses, responses_from_wide
from pluralrm.config import COLLECT, CollectConfig
from pluralrm.generate.prompts import prompt_key

if TYPE_CHECKING:
    from pluralrm.generate.run import ProgressCallback
    from pluralrm.generate.sampling import Generator
    from pluralrm.rewards.protocols import FeatureEncoder

logger = logging.getLogger(__name__)

PROMPTS, RESPONSES = "prompts.jsonl", "responses.jsonl"
TO_LABEL, AI_LABELLED, DROPPED = "pairs-to-label.jsonl", "ai-labelled.jsonl", "dropped.jsonl"


class StageOrderError(RuntimeError):
    """A stage was asked to run before the stage it reads has completed."""


def _input_id(source: str | Path) -> str:
    path = Path(str(source).split(":")[0]) if not Path(source).exists() else Path(source)
    return file_hash(path) if path.is_file() else f"name:{source}"


def _require(project: Path, stage: str, command: str) -> None:
    manifest = read_manifest(project, stage)
    if manifest is None or manifest.status != "complete":
        raise StageOrderError(
            f"{project}: the {stage} stage has not completed; run `pluralrm collect {command}` first"
        )


def _unchanged(project: Path, manifest: StageManifest, force: bool) -> StageManifest | None:
    previous = read_manifest(project, manifest.stage)
    if not force and previous is not None and previous.status == "complete" and previous.same_run(manifest):
        logger.info(
            "%s: the %s stage is up to date (same inputs and settings); skipped", project, manifest.stage
        )
        return previous
    return None


def _masked(items: list, mask: np.ndarray) -> list:
    return [item for item, keep in zip(items, mask, strict=True) if keep]


class _Table:
    """Collects a stage's rows: each named rule's records in and out and its time."""

    def __init__(self) -> None:
        self.rows: list[FilterCount] = []

    def apply(self, name: str, items: list, step: Callable[[list], list]) -> list:
        start = time.perf_counter()
        out = step(items)
        self.rows.append(FilterCount(name, len(items), len(out), round(time.perf_counter() - start, 4)))
        return out


def run_prompts(
    project: str | Path,
    sources: Sequence[str | Path],
    *,
    featurizer: FeatureEncoder | None = None,
    generator: Generator | None = None,
    rewarded: str | Path | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    config: CollectConfig = COLLECT,
    force: bool = False,
) -> StageManifest:
    """Stage 1: read, expand, de-duplicate and select prompts into ``PROJECT/prompts.jsonl``.

    Parameters
    ----------
    sources : files, dataset directories or dataset names (see :func:`~.prompts_stage.load_sources`)
    featurizer : FeatureEncoder (a :class:`pluralrm.backbone.Featurizer`), optional
        Embeds prompts for near-duplicate removal and cluster coverage (both skipped without one).
    generator : pluralrm.generate.Generator, optional
        Writes ``config.expand`` new prompts (self-instruct).
    rewarded : path, optional
        The current reward's scores of sampled responses (``pluralrm rank``'s output, any file
        :func:`~pluralrm.data.load_ranked` reads); with ``config.keep_by_reward`` keeps the prompts whose
        rewards spread most or are lowest (``config.reward_rule``).
    """
    project = Path(project)
    settings = {
        k: v
        for k, v in asdict(config).items()
        if k
        in ("dedup_threshold", "max_prompts", "n_clusters", "expand", "keep_by_reward", "reward_rule", "seed")
    }
    settings["limit"] = limit
    settings["embedding"] = featurizer.namespace(featurizer.spec) if featurizer is not None else None
    settings["expand_model"] = getattr(generator, "model", None) if config.expand else None
    inputs = {str(s): _input_id(s) for s in [*sources, *([rewarded] if rewarded else [])]}
    manifest = StageManifest("prompts", inputs=inputs, settings=settings)
    if (done := _unchanged(project, manifest, force)) is not None:
        return done
    start = time.perf_counter()
    table = _Table()
    prompts = table.apply(
        "sources", [], lambda _: load_sources(sources, limit=limit, skip_invalid=skip_invalid)
    )
    if config.expand and generator is not None:
        prompts = table.apply(
            "self-instruct",
            prompts,
            lambda p: p + expand_self_instruct(p, generator, config.expand, seed=config.seed),
        )
    if rewarded is not None and config.keep_by_reward is not None:
        from pluralrm.collect.prompts_stage import rewards_by_prompt
        from pluralrm.data import load_ranked

        rule = RewardSelection(config.keep_by_reward, config.reward_rule)
        by_prompt = rewards_by_prompt(load_ranked(rewarded).records)
        prompts = table.apply(
            rule.name, prompts, lambda p: _masked(p, rule.keep([r["prompt_id"] for r in p], by_prompt))
        )
    if featurizer is not None:
        dedup = NearDuplicates(config.dedup_threshold)
        embedded: dict[str, np.ndarray] = {}

        def near_duplicates(items: list) -> list:  # timed with the embedding it needs
            E = embed_prompts(items, featurizer)
            mask = dedup.keep(E)
            embedded["E"] = E[mask]
            return _masked(items, mask)

        prompts = table.apply(dedup.name, prompts, near_duplicates)
        if config.max_prompts is not None:
            cover = ClusterCoverage(config.max_prompts, config.n_clusters, config.seed)
            prompts = table.apply(cover.name, prompts, lambda p: _masked(p, cover.keep(embedded["E"])))
    elif config.max_prompts is not None:
        prompts = table.apply("first-n", prompts, lambda p: p[: config.max_prompts])
    manifest.outputs = {PROMPTS: write_records(project / PROMPTS, prompts)}
    return _complete(project, manifest, table, start)


def _complete(project: Path, manifest: StageManifest, table: _Table, start: float) -> StageManifest:
    """Mark a stage complete with its filter table and duration, and write its manifest (last: a stage
    whose manifest says complete has all its outputs on disk)."""
    manifest.filters, manifest.status = table.rows, "complete"
    manifest.seconds = round(time.perf_counter() - start, 3)
    write_manifest(project, manifest)
    return manifest


def run_responses(
    project: str | Path,
    settings: Sequence[GeneratorSetting] = (),
    *,
    from_wide: Sequence[str | Path] = (),
    generators: dict | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> StageManifest:
    """Stage 2: sample responses for the prompt stage's prompts (and/or import wide files) into
    ``PROJECT/responses.jsonl``. Sampling resumes per setting where a killed run stopped."""
    project = Path(project)
    _require(project, "prompts", "prompts")
    if not settings and not from_wide:
        raise ValueError("give at least one generator setting or a wide file to import")
    inputs = {PROMPTS: file_hash(project / PROMPTS)} | {str(p): file_hash(p) for p in from_wide}
    manifest = StageManifest(
        "responses", inputs=inputs, settings={"generators": [asdict(s) for s in settings]}
    )
    if (done := _unchanged(project, manifest, force)) is not None:
        return done
    start = time.perf_counter()
    prompts = read_records(project / PROMPTS)
    manifest.status = "running"
    write_manifest(project, manifest)
    files = generate_responses(
        prompts, project / "responses", settings, generators=generators, progress=progress
    )
    ids = {prompt_key(p["prompt"]): p["prompt_id"] for p in prompts}
    table = _Table()
    responses: list[dict] = []
    for path in [*files, *map(Path, from_wide)]:

        def read(_: list, path: Path = path) -> list:
            return responses_from_wide(path, ids)

        responses += table.apply(path.name, [], read)
    manifest.outputs = {RESPONSES: write_records(project / RESPONSES, responses)}
    return _complete(project, manifest, table, start)


def _pair_out(
    pair: dict, margin: float | None, label: str | None, judge: dict, config: CollectConfig
) -> dict:
    origin = provenance(
        "filter",
        parents=[pair["a_id"], pair["b_id"]],
        source=pair["prompt_id"],
        model=judge.get("model"),
        params={**judge, "ai_fraction": config.ai_fraction, "ai_margin": config.ai_margin},
        seed=config.seed,
    )
    if not isinstance(pair["prompt"], str):
        origin["conversation"] = pair["prompt"]  # the pairs file's prompt is rendered text; keep the turns
    return {
        "pair_id": pair["pair_id"],
        "prompt": F.render_prompt(pair["prompt"]),
        "response_a": pair["response_a"],
        "response_b": pair["response_b"],
        "ai_label": label,
        "ai_margin": margin,
        "provenance": origin,
    }


def run_filter(
    project: str | Path,
    *,
    judge: F.RewardJudge | None = None,
    lm_judge: F.LMJudge | None = None,
    config: CollectConfig = COLLECT,
    force: bool = False,
) -> StageManifest:
    """Stage 3: drop degenerate responses and near-identical pairs, let the AI judge label the pairs it
    decides with a large margin, and send the uncertain rest to people within the label budget.

    Every pair for people carries the judge's lean (``ai_label`` = sign of ``ai_margin``, a low-confidence
    guess kept so the labelling app can measure AI-vs-human agreement); without a judge both are None.
    With ``lm_judge``, a reward-confident pair is AI-labelled only when the LM (asked in both orders)
    agrees; otherwise it goes to people.
    """
    project = Path(project)
    _require(project, "responses", "responses")
    described = judge.describe() if judge is not None else {}
    settings = {**asdict(config), "judge": described, "lm_judge": lm_judge.describe() if lm_judge else None}
    manifest = StageManifest("filter", inputs={RESPONSES: file_hash(project / RESPONSES)}, settings=settings)
    if (done := _unchanged(project, manifest, force)) is not None:
        return done
    start = time.perf_counter()
    table = _Table()
    responses = read_records(project / RESPONSES)
    dropped: list[dict] = []
    for rule in F.default_response_rules(config):

        def step(items: list, rule: F.ResponseRule = rule) -> list:
            kept = []
            for r in items:
                if rule(r):
                    dropped.append({"response_id": r["response_id"], "reason": rule.name, "text": r["text"]})
                else:
                    kept.append(r)
            return kept

        responses = table.apply(rule.name, responses, step)
    pairs = table.apply("pairs", responses, F.candidate_pairs)
    near = F.NearIdentical(config.near_identical)
    pairs = table.apply(near.name, pairs, lambda ps: [p for p in ps if not near(p)])
    pairs = table.apply(
        "pairs-per-prompt", pairs, lambda ps: F.pairs_per_prompt(ps, config.pairs_per_prompt, config.seed)
    )
    ai: list[dict] = []
    people: list[dict] = []
    if judge is None:
        people = [_pair_out(p, None, None, described, config) for p in pairs]
    else:
        judged = time.perf_counter()
        margins = judge.margins(pairs)
        sure = F.confident(margins, fraction=config.ai_fraction, margin=config.ai_margin)
        for pair, margin, decided in zip(pairs, margins, sure, strict=True):
            label = "a" if margin > 0 else "b" if margin < 0 else None
            if decided and lm_judge is not None and lm_judge.verdict(pair) != label:
                decided = False
            out = _pair_out(pair, float(margin), label, described, config)
            (ai if decided and label is not None else people).append(out)
        seconds = round(time.perf_counter() - judged, 4)
        table.rows.append(FilterCount("ai-judge", len(pairs), len(people), seconds))
    people, over = F.within_budget(people, config.label_budget)
    table.rows.append(FilterCount("label-budget", len(people) + len(over), len(people), 0.0))
    manifest.outputs = {
        TO_LABEL: write_records(project / TO_LABEL, people),
        AI_LABELLED: write_records(project / AI_LABELLED, ai),
        DROPPED: write_records(project / DROPPED, dropped),
        "over_budget": len(over),
    }
    return _complete(project, manifest, table, start)


def stage_table(project: str | Path) -> list[dict[str, Any]]:
    """Every completed stage's rows (stage, rule, in, out, dropped, seconds), for reports and the CLI."""
    rows = []
    for stage in ("prompts", "responses", "filter"):
        manifest = read_manifest(project, stage)
        if manifest is None:
            continue
        for f in manifest.filters:
            rows.append(
                {
                    "stage": stage,
                    "rule": f.name,
                    "in": f.records_in,
                    "out": f.records_out,
                    "seconds": f.seconds,
                }
            )
    return rows


def margins_summary(pairs: Sequence[dict]) -> dict[str, float]:
    """Median |margin| of a pair file (how hard the pairs sent to people are)."""
    values = [abs(p["ai_margin"]) for p in pairs if p.get("ai_margin") is not None]
    return {"pairs": len(pairs), "median_abs_margin": float(np.median(values)) if values else float("nan")}
