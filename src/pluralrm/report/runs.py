"""Sections of the folders other verbs write: k-shot runs (``kshot``), many-responses analyses
(``analyze``), customized reward models (``customize``), labelling stores and collection projects.

Each reads what its verb saved — CSVs, ``summary.json``, ``pluralrm_customize.json``, the SQLite store,
stage manifests — and nothing else: a report never reruns an experiment. Figures the verb saved are
inlined as they are; agreement numbers come from :mod:`pluralrm.label.agreement`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pluralrm.adapt.kshot import over_users
from pluralrm.data.errors import DataValidationError, RecordLocation
from pluralrm.evaluate.plots import plot_kshot
from pluralrm.report.figures import file_uri, grouped_bars, inline_plot, line_chart
from pluralrm.report.sections import Figure, Section, Table, Text, cell, interval

KSHOT_FILE = "kshot.csv"
ANALYZE_FILE = "summary.json"
CUSTOMIZE_FILE = "pluralrm_customize.json"
STAGES = ("prompts", "responses", "filter")


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_csv_rows(path: Path) -> list[dict]:
    """A tidy CSV as dicts, numbers as floats (``write_csv``'s output read back)."""
    with open(path, newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataValidationError(RecordLocation(str(path)), f"not JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataValidationError(RecordLocation(str(path)), "expected a JSON object")
    return data


def kshot_section(folder: Path) -> Section:
    """A ``pluralrm kshot`` folder: curves per user with 95 % intervals, mean per method and k, and the
    layer and adapter each user was learned with when the run chose them."""
    rows = read_csv_rows(folder / KSHOT_FILE)
    for i, row in enumerate(rows):
        for key in ("user", "method", "k", "mean", "ci_low", "ci_high"):
            if key not in row:
                raise DataValidationError(
                    RecordLocation(str(folder / KSHOT_FILE), row=i), "missing column", key
                )
        row["k"] = int(row["k"])
        row["user"] = str(row["user"])
    section = Section(title=folder.name, kind="kshot", source=str(folder))
    ks = sorted({r["k"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    summary = {(r["method"], r["k"]): r for r in over_users(rows)}  # the CLI's kshot-over-users.csv
    table = [
        [str(method), *(cell(summary[method, k]["mean"]) if (method, k) in summary else "" for k in ks)]
        for method in methods
    ]
    users = list(dict.fromkeys(r["user"] for r in rows))
    section.blocks += [
        Text(
            f"{len(users)} users learned from k of their own pairs, each left out of the heads "
            "(leave-one-user-out)."
        ),
        Table("Accuracy, mean over users", ["method", *(f"k={k}" for k in ks)], table),
        Figure(
            "k-shot curves per user (95% intervals over draws; a population: their mean, 95% over users)",
            inline_plot(plot_kshot, rows, title="leave-one-user-out"),
        ),
    ]
    chosen = [
        [
            u,
            str(next((r.get("features", "") for r in rows if r["user"] == u), "")),
            str(next((r.get("adapter", "") for r in rows if r["user"] == u and r.get("adapter")), "")),
        ]
        for u in users
    ]
    if any(c[1] or c[2] for c in chosen):
        section.blocks.append(
            Table("Chosen layer and adapter per user", ["user", "layer", "adapter"], chosen)
        )
    return section


def analyze_section(folder: Path) -> Section:
    """A ``pluralrm analyze`` folder: its figures (best-of-n, reward vs length, agreement, generators) and
    the numbers of its summary."""
    summary = _json(folder / ANALYZE_FILE)
    if "best_of_n" not in summary:
        raise DataValidationError(
            RecordLocation(str(folder / ANALYZE_FILE)), "not an analyze summary", "best_of_n"
        )
    section = Section(
        title=folder.name, kind="analyze", source=str(folder), notes=list(summary.get("notes", []))
    )
    section.blocks.append(
        Text(
            f"{summary.get('n_prompts')} prompts, {summary.get('n_responses')} responses "
            f"of {summary.get('source')}."
        )
    )
    for curve, rows in summary["best_of_n"].items():
        section.blocks.append(
            Table(
                f"Best-of-n: {curve}",
                ["n", "expected", "95% CI", "win rate", "95% CI", "prompts"],
                [
                    [
                        str(r["n"]),
                        cell(r.get("expected")),
                        interval(r, "expected_ci_low", "expected_ci_high"),
                        cell(r.get("win_rate")),
                        interval(r, "win_rate_ci_low", "win_rate_ci_high"),
                        str(r.get("n_prompts")),
                    ]
                    for r in rows
                ],
            )
        )
    if summary.get("agreement"):
        section.blocks.append(
            Table(
                "Agreement between the two rewards (mean over prompts)",
                ["metric", "mean", "95% CI", "prompts", "undefined"],
                [
                    [
                        r["metric"],
                        cell(r.get("mean")),
                        interval(r),
                        str(r.get("n_prompts")),
                        str(r.get("n_undefined")),
                    ]
                    for r in summary["agreement"]
                ],
            )
        )
    if summary.get("length"):
        section.blocks.append(
            Table(
                "Reward vs length",
                ["unit", "within-prompt ρ", "95% CI", "pooled ρ"],
                [
                    [
                        r["unit"],
                        cell(r.get("within_mean")),
                        interval(r, "within_ci_low", "within_ci_high"),
                        cell(r.get("pooled_spearman")),
                    ]
                    for r in summary["length"]
                ],
            )
        )
    if summary.get("rewardbench"):
        section.blocks.append(
            Table(
                "RewardBench sections",
                ["section", "accuracy", "95% CI", "pairs"],
                [
                    [r["section"], cell(r.get("accuracy")), interval(r), str(r.get("n"))]
                    for r in summary["rewardbench"]
                ],
            )
        )
    for name, caption in (
        ("best_of_n.png", "Best-of-n curves"),
        ("rewards.png", "Reward distributions"),
        ("length.png", "Reward vs response length (reward distribution by length bin)"),
        ("agreement.png", "Per-prompt agreement of the two rewards"),
        ("generators.png", "Responses by generator"),
    ):
        if (folder / name).exists():
            section.blocks.append(Figure(caption, file_uri(folder / name)))
    return section


def customize_section(folder: Path) -> Section:
    """A customized reward model: its stages (base, data fingerprints, sizes, validation accuracy, losses)
    and, where the stage recorded them, its training and validation curves."""
    meta = _json(folder / CUSTOMIZE_FILE)
    stages = meta.get("stages")
    if not isinstance(stages, list) or not stages:
        raise DataValidationError(
            RecordLocation(str(folder / CUSTOMIZE_FILE)), "no stages recorded", "stages"
        )
    section = Section(title=folder.name, kind="customized", source=str(folder))
    section.blocks.append(
        Table(
            "Stages (the DSP scheme: base LM → general RM → domain RM)",
            [
                "stage",
                "started from",
                "data",
                "train",
                "validation",
                "validation accuracy",
                "first loss",
                "last loss",
                "steps",
                "device",
            ],
            [
                [
                    str(s.get("stage")),
                    str(s.get("started_from")),
                    str(s.get("data")),
                    str(s.get("n_train")),
                    str(s.get("n_validation")),
                    cell(s.get("validation_accuracy")),
                    cell(s.get("first_loss")),
                    cell(s.get("last_loss")),
                    str(s.get("steps")),
                    f"{s.get('device')}/{s.get('dtype')}",
                ]
                for s in stages
            ],
        )
    )
    prints = [
        [str(s.get("stage")), k, str(v)[:16]] for s in stages for k, v in s.items() if k.endswith("sha256")
    ]
    if prints:
        section.blocks.append(
            Table("Data fingerprints (sha256, first 16 hex digits)", ["stage", "what", "sha256"], prints)
        )
    curves = {}
    for s in stages:
        for key, label in (("loss_history", "training loss"), ("eval_history", "validation accuracy")):
            history = s.get(key)
            if isinstance(history, list) and history:
                curves[f"{s.get('stage')}: {label}"] = (
                    [h["step"] for h in history],
                    [h["value"] for h in history],
                )
    if curves:
        section.blocks.append(
            Figure(
                "Training and validation curves",
                line_chart(curves, xlabel="step", ylabel="value", title="Curves per stage"),
            )
        )
    else:
        section.notes.append(
            "no per-step history recorded (older customize runs keep the first and last loss only)"
        )
    return section


def labels_blocks(store_path: Path) -> list[Table | Figure | Text]:
    """Labels per labeller, Cohen's κ per pair of labellers, time per label, agreement with the AI judge."""
    from pluralrm.label.agreement import ai_agreement, choice_counts, pairwise_kappa, time_per_label
    from pluralrm.label.store import LabelStore

    store = LabelStore(store_path)
    labels = store.labels()
    pairs = store.pairs()
    blocks: list[Table | Figure | Text] = [Text(f"{len(pairs)} pairs to label; {len(labels)} labels given.")]
    if not labels:
        return blocks
    counts = choice_counts(labels)
    answers = ("a", "b", "tie", "skip")
    blocks.append(
        Table(
            "Labels per labeller",
            ["labeller", *answers, "all"],
            [[name, *(str(c[a]) for a in answers), str(sum(c.values()))] for name, c in counts.items()],
        )
    )
    blocks.append(
        Figure(
            "Labels per labeller",
            grouped_bars(
                list(counts),
                {a: [c[a] for c in counts.values()] for a in answers},
                ylabel="labels",
                title="Answers per labeller",
            ),
        )
    )
    kappas = pairwise_kappa(labels)
    if kappas:
        blocks.append(
            Table(
                "Cohen's κ per pair of labellers (on the pairs both judged)",
                ["labeller", "labeller", "common pairs", "κ", "observed agreement"],
                [
                    [k.labeller_1, k.labeller_2, str(k.n_common), cell(k.kappa), cell(k.observed)]
                    for k in kappas
                ],
            )
        )
    times = time_per_label(labels)
    if times:
        blocks.append(
            Table(
                "Time per label (seconds)",
                ["labeller", "labels", "median", "mean"],
                [[t.labeller, str(t.n), cell(t.median_s, 1), cell(t.mean_s, 1)] for t in times],
            )
        )
    ai = ai_agreement(labels, {p.pair_id: p.ai_label for p in pairs})
    if ai:
        blocks.append(
            Table(
                "Agreement with the AI judge (decisive labels on AI-labelled pairs)",
                ["labeller", "labels", "agreement"],
                [[a.labeller, str(a.n), cell(a.agreement)] for a in ai],
            )
        )
    return blocks


def labels_section(path: Path) -> Section:
    """A labelling store (``labels.sqlite``) or a project folder holding one."""
    from pluralrm.label.store import LabelStore

    store = path / LabelStore.FILENAME if path.is_dir() else path
    section = Section(title=path.name, kind="labels", source=str(path))
    section.blocks += labels_blocks(store)
    return section


def collection_section(folder: Path) -> Section:
    """A collection project: each stage's counts and filters from its manifest, then its labels (if any)."""
    from pluralrm.collect.provenance import read_manifest
    from pluralrm.label.store import LabelStore

    section = Section(title=folder.name, kind="collection", source=str(folder))
    rows, filters = [], []
    for stage in STAGES:
        manifest = read_manifest(folder, stage)
        if manifest is None:
            continue
        outputs = ", ".join(f"{k}: {v}" for k, v in manifest.outputs.items())
        rows.append([stage, manifest.status, outputs, cell(manifest.seconds, 1), manifest.started_at])
        filters += [
            [stage, f.name, str(f.records_in), str(f.records_out), str(f.dropped)] for f in manifest.filters
        ]
    section.blocks.append(Table("Stages", ["stage", "status", "outputs", "seconds", "started"], rows))
    if filters:
        section.blocks.append(
            Table("What each filter kept", ["stage", "filter", "in", "out", "dropped"], filters)
        )
    if (folder / LabelStore.FILENAME).exists():
        section.blocks += labels_blocks(folder / LabelStore.FILENAME)
    return section
