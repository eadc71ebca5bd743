"""The section of a decomposed reward model: what it is, and — with pairs to read — the data, each head's
accuracy, what each head means (named automatically) and how the data's users weigh the heads.

Numbers come from the library's one function for each: accuracy rows with bootstrap intervals
(:func:`pluralrm.evaluate.runner.evaluate_model`), head meanings (:mod:`pluralrm.evaluate.interpret`),
user profiles (:func:`pluralrm.adapt.personalize.build_profile`) and the head plots of
:mod:`pluralrm.evaluate.plots`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from pluralrm.config import REPORT, ReportConfig
from pluralrm.data.features import PairFeatures
from pluralrm.data.loaders import LoadReport
from pluralrm.data.splits import group_split
from pluralrm.evaluate.interpret import HeadMeaning, head_meanings
from pluralrm.evaluate.plots import plot_explained_variance, plot_head_accuracy
from pluralrm.evaluate.runner import evaluate_model
from pluralrm.report.figures import grouped_bars, inline_plot
from pluralrm.report.sections import Example, Figure, HeadCard, Heads, Section, Table, Text, cell, interval
from pluralrm.rewards.math import pair_correctness
from pluralrm.rewards.reward_model import RewardModel

logger = logging.getLogger(__name__)

# Writes a description of one head from its name, correlations and example pairs (an LM; see describe.py).
Describer = Callable[[HeadMeaning, Sequence[dict]], str]


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in prompt)


def model_summary(model: RewardModel) -> Text:
    spec = model.namespace.get("spec", {})
    heads = model.decomposed
    parts = [
        f"backbone {model.backbone_name or '?'} (pooling {spec.get('pooling', '?')}, "
        f"layer {spec.get('layer', '?')}, "
        f"{model.namespace.get('dtype', '?')})",
        f"{model.n_features} features",
        "a general head" if model.general is not None else "no general head",
        f"{len(heads.components_)} PCA heads ({'centred' if heads.center else 'uncentred'})"
        if heads
        else "no PCA heads",
    ]
    meta = model.metadata
    if meta.get("fit_pairs"):
        parts.append(
            f"fitted on {meta['fit_pairs']} pairs ({meta.get('val_pairs', 0)} held out) "
            f"of {meta.get('source', '?')}"
        )
    for key in ("adapter_choice", "layer_choice"):
        if isinstance(meta.get(key), dict) and meta[key].get("name"):
            parts.append(f"{key.replace('_', ' ')}: {meta[key]['name']}")
    return Text("; ".join(parts) + ".")


def data_table(report: LoadReport, records: Sequence[dict]) -> list[Table | Text]:
    """Counts read, loaded and skipped (with the first reasons), ties and identical pairs, per subset."""
    counts = Table(
        "What was read",
        ["read", "loaded", "ties skipped", "identical skipped", "invalid skipped", "empty responses kept"],
        [
            [
                str(report.n_read),
                str(report.n_loaded),
                str(report.n_ties),
                str(report.n_identical),
                str(report.n_skipped),
                str(report.n_empty_responses),
            ]
        ],
    )
    blocks: list[Table | Text] = [counts]
    if report.skipped:
        blocks.append(
            Table("Why records were skipped (first 5)", ["problem"], [[str(e)] for e in report.skipped[:5]])
        )
    per_subset = Counter(r.get("subset") or "-" for r in records)
    users = Counter(r.get("user") or "-" for r in records)
    blocks.append(
        Table("Pairs per subset", ["subset", "pairs"], [[s, str(n)] for s, n in sorted(per_subset.items())])
    )
    if len(users) > 1 or "-" not in users:
        blocks.append(
            Table("Pairs per user", ["user", "pairs"], [[u, str(n)] for u, n in sorted(users.items())])
        )
    return blocks


def _examples(indices: Sequence[int], margins: np.ndarray, records: Sequence[dict]) -> list[Example]:
    return [
        Example(
            margin=float(margins[i]),
            agrees=bool(margins[i] > 0),
            prompt=_prompt_text(records[i]["prompt"]),
            chosen=records[i]["chosen"],
            rejected=records[i]["rejected"],
        )
        for i in indices
    ]


def heads_block(
    model: RewardModel,
    features: PairFeatures,
    records: Sequence[dict],
    rows: list[dict],
    config: ReportConfig,
    describe: Describer | None = None,
) -> tuple[Heads, list[HeadMeaning]]:
    """The top heads' cards: automatic name, attribute correlations, distinctive words, extreme pairs."""
    heads = model.require_heads("describe")
    k = min(config.heads, len(heads.components_))
    margins = heads.scores(features.differences)[:, :k]
    names = [f"pc{j + 1}" for j in range(k)]
    meanings = head_meanings(
        margins,
        [r["chosen"] for r in records],
        [r["rejected"] for r in records],
        names,
        min_correlation=config.min_correlation,
        n_extremes=config.extremes,
        n_examples=config.examples,
    )
    accuracy = {r["head"]: r for r in rows if r["subset"] == "all"}
    cards = []
    for j, meaning in enumerate(meanings):
        if describe is not None:
            shown = [records[i] for i in meaning.top + meaning.bottom]
            meaning.description = describe(meaning, shown)
        row = accuracy.get(meaning.head, {})
        ranked = sorted(meaning.correlations.items(), key=lambda kv: -abs(kv[1]))
        cards.append(
            HeadCard(
                head=meaning.head,
                name=meaning.name,
                summary=(
                    f"explained variance {heads.explained_variance_ratio_[j]:.3f}; held-out accuracy "
                    f"{cell(row.get('accuracy'))} (95% CI {interval(row)}, {row.get('n', 0)} pairs)"
                ),
                correlations=[(a, f"{r:+.2f}") for a, r in ranked[:6]],
                more_words=meaning.more_words,
                less_words=meaning.less_words,
                top=_examples(meaning.top, margins[:, j], records),
                bottom=_examples(meaning.bottom, margins[:, j], records),
                description=meaning.description,
            )
        )
    caption = (
        f"What each head means, on {len(records)} pairs: the correlation of its margins with the difference "
        "of each measurable attribute (chosen − rejected), the words distinctive of the responses it prefers "
        f"among its {config.extremes} most decided pairs, and the pairs it separates most strongly each way."
    )
    return Heads(caption, cards), meanings


def users_blocks(
    model: RewardModel, features: PairFeatures, config: ReportConfig
) -> list[Table | Figure | Text]:
    """Per user of the data: weights over the heads fitted on half of their prompts, and the general and
    personal accuracy on the other half (so no accuracy is measured on the pairs that set the weights)."""
    from pluralrm.adapt.personalize import build_profile
    from pluralrm.config import ADAPT

    users = sorted({u for u in features.users if u})
    if not users:
        return []
    rows, weights = [], {}
    for user in users:
        own = features.select([i for i, u in enumerate(features.users) if u == user])
        fit_idx, held_idx = group_split(own.groups, [0.5, 0.5], seed=config.seed)
        if not len(fit_idx) or not len(held_idx):
            continue
        profile = build_profile(model, user, own.select(fit_idx).differences, config=ADAPT)
        held = own.select(held_idx)
        general = pair_correctness(model.margins(held)).mean() if model.general is not None else float("nan")
        personal = pair_correctness(model.margins(held, user=profile)).mean()
        weights[user] = profile.weights
        rows.append(
            [
                user,
                profile.method,
                str(len(fit_idx)),
                str(len(held_idx)),
                cell(float(general)),
                cell(float(personal)),
            ]
        )
    if not rows:
        return [Text("No user has pairs on two prompts or more: no weights fitted.")]
    k = min(config.heads, len(next(iter(weights.values()))))
    figure = grouped_bars(
        [f"pc{j + 1}" for j in range(k)],
        {user: w[:k] for user, w in weights.items()},
        ylabel="weight",
        title="Each user's weights over the top heads",
    )
    return [
        Table(
            "Users: weights fitted on half of each user's prompts, accuracy on the other half",
            ["user", "adapter", "fit pairs", "held-out pairs", "general head accuracy", "personal accuracy"],
            rows,
        ),
        Figure("Weights over heads (bars per user)", figure),
    ]


def model_section(
    model: RewardModel,
    *,
    title: str,
    source: str,
    features: PairFeatures | None = None,
    records: Sequence[dict] | None = None,
    load_report: LoadReport | None = None,
    config: ReportConfig = REPORT,
    describe: Describer | None = None,
    val: PairFeatures | None = None,
) -> tuple[Section, list[HeadMeaning]]:
    """The section of ``model``; with ``features`` and their ``records`` (same order), everything that
    needs pairs. Returns the head meanings too (the demo and the tests read the names)."""
    section = Section(title=title, kind="model", source=source, blocks=[model_summary(model)])
    heads = model.decomposed
    if heads is not None:
        section.blocks.append(
            Figure(
                "Explained variance of the heads",
                inline_plot(plot_explained_variance, heads.explained_variance_ratio_),
            )
        )
    if features is None or records is None:
        section.notes.append("no pairs given (--data): accuracy, head meanings and users need pairs to read")
        return section, []
    if len(records) != len(features):
        raise ValueError(
            f"{len(records)} records for {len(features)} featurized pairs: they must be the same pairs"
        )
    if load_report is not None:
        section.blocks += data_table(load_report, records)
    by = "user" if any(features.users) else "subset"
    rows = evaluate_model(model, features, val=val, n_resamples=config.n_resamples, by=by)
    shown = [r for r in rows if r["subset"] == "all"]
    section.blocks.append(
        Table(
            f"Held-out accuracy per head ({len(features)} pairs; 95% bootstrap intervals)",
            ["head", "accuracy", "95% CI", "pairs", "ties"],
            [[r["head"], cell(r["accuracy"]), interval(r), str(r["n"]), str(r["ties"])] for r in shown],
        )
    )
    section.blocks.append(
        Figure("Accuracy per head", inline_plot(plot_head_accuracy, rows, title="Accuracy per head"))
    )
    meanings: list[HeadMeaning] = []
    if heads is not None:
        block, meanings = heads_block(model, features, records, rows, config, describe)
        # Second, right under the model's summary: the first thing a reader looks for.
        section.blocks.insert(
            1,
            Table(
                "Automatic head names",
                ["head", "name", "strongest attribute", "prefers words"],
                [
                    [
                        m.head,
                        m.name,
                        f"{max(m.correlations.items(), key=lambda kv: abs(kv[1]))[0]} "
                        f"({max(m.correlations.values(), key=abs):+.2f})",
                        ", ".join(m.more_words[:4]),
                    ]
                    for m in meanings
                ],
            ),
        )
        section.blocks.append(block)
        section.blocks += users_blocks(model, features, config)
    return section, meanings
