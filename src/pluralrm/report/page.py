"""Detect what each path is, build its section, render one self-contained HTML page.

The page is one file: figures are inline PNG ``data:`` URIs, the style sheet is inline, there is no
script and nothing is fetched (a Content-Security-Policy meta tag forbids scripts and remote loads, so
even a text that slipped through escaping could not run). Jinja2 escapes every string from data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

import pluralrm
from pluralrm.atomic import atomic_path
from pluralrm.config import FEATURIZE, REPORT, FeaturizeConfig, ReportConfig
from pluralrm.report.model import Describer, model_section
from pluralrm.report.runs import (
    ANALYZE_FILE,
    CUSTOMIZE_FILE,
    KSHOT_FILE,
    analyze_section,
    collection_section,
    customize_section,
    kshot_section,
    labels_section,
)
from pluralrm.report.sections import Section, Table, cell, interval

logger = logging.getLogger(__name__)

KINDS = ("model", "customized", "kshot", "analyze", "labels", "collection")


def detect(path: str | Path) -> str:
    """What ``path`` is, by the files its verb writes; a path that is none of them is an error that says
    what was looked for."""
    from pluralrm.label.store import LabelStore

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix in (".sqlite", ".db"):
            return "labels"
    elif (path / CUSTOMIZE_FILE).exists():
        return "customized"
    elif (path / "config.json").exists() and (path / "heads.safetensors").exists():
        return "model"
    elif (path / KSHOT_FILE).exists():
        return "kshot"
    elif (path / ANALYZE_FILE).exists() and (path / "best_of_n.csv").exists():
        return "analyze"
    elif any((path / f"{stage}.manifest.json").exists() for stage in ("prompts", "responses", "filter")):
        return "collection"
    elif (path / LabelStore.FILENAME).exists():
        return "labels"
    raise ValueError(
        f"{path}: not a report input — expected a reward model (config.json + heads.safetensors), a "
        f"customized model ({CUSTOMIZE_FILE}), a kshot folder ({KSHOT_FILE}), an analyze folder "
        f"({ANALYZE_FILE} + best_of_n.csv), a collection project (*.manifest.json) or a labelling store "
        f"({LabelStore.FILENAME})"
    )


def _read_pairs(model, data: str, config: ReportConfig, featurize: FeaturizeConfig, cache):
    """The pairs of ``data`` (invalid ones skipped and counted, as ``config`` says) and their features in
    ``model``'s own feature space."""
    from pluralrm.data import load_pairs
    from pluralrm.scale.engine import LocalEngine

    loaded = load_pairs(data, skip_invalid=config.skip_invalid)
    features, _ = LocalEngine().featurize_pairs(
        loaded.records,
        featurize=replace(FEATURIZE, device=featurize.device),
        model=model,
        cache=cache,
        source=data,
    )
    return loaded, features


def _model_with_data(
    path: Path,
    data: str | None,
    config: ReportConfig,
    featurize: FeaturizeConfig,
    cache,
    describe: Describer | None,
) -> Section:
    from pluralrm.rewards.reward_model import RewardModel

    model = RewardModel.from_pretrained(path)
    if data is None:
        return model_section(model, title=path.name, source=str(path), config=config)[0]
    loaded, features = _read_pairs(model, data, config, featurize, cache)
    section, _ = model_section(
        model,
        title=path.name,
        source=f"{path} on {data}",
        features=features,
        records=loaded.records,
        load_report=loaded.report,
        config=config,
        describe=describe,
    )
    return section


def _customized_with_data(
    path: Path, data: str | None, config: ReportConfig, featurize: FeaturizeConfig, cache
) -> tuple[Section, dict[str, dict]]:
    """A customized model's section and, with ``data``, its accuracy per subset ({subset: row})."""
    from pluralrm.evaluate.tables import accuracy_rows
    from pluralrm.rewards.reward_model import RewardModel

    section = customize_section(path)
    if data is None:
        return section, {}
    model = RewardModel.from_pretrained(path)
    _, features = _read_pairs(model, data, config, featurize, cache)
    rows = accuracy_rows(
        {"reward": model.margins(features)}, features.subsets, n_resamples=config.n_resamples
    )
    section.blocks.append(
        Table(
            f"Accuracy on {Path(data).name} per subset (95% bootstrap intervals)",
            ["subset", "accuracy", "95% CI", "pairs", "ties"],
            [[r["subset"], cell(r["accuracy"]), interval(r), str(r["n"]), str(r["ties"])] for r in rows],
        )
    )
    return section, {r["subset"]: r for r in rows}


def dsp_table(accuracies: dict[str, dict[str, dict]]) -> Table:
    """One row per customized model, one column per subset (domain) of the data: the DSP paper's table."""
    subsets = list(dict.fromkeys(s for rows in accuracies.values() for s in rows))
    return Table(
        "Customized models side by side: accuracy per subset of --data (the DSP table)",
        ["model", *subsets],
        [
            [name, *(cell(rows[s]["accuracy"]) if s in rows else "–" for s in subsets)]
            for name, rows in accuracies.items()
        ],
    )


def build_sections(
    paths: Sequence[str | Path],
    *,
    data: str | None = None,
    config: ReportConfig = REPORT,
    featurize: FeaturizeConfig = FEATURIZE,
    cache=None,
) -> list[Section]:
    """One section per path, in the order given (``data``: pairs the model paths are read on)."""
    describe = None
    if config.describe_url:
        from pluralrm.report.describe import EndpointDescriber

        describe = EndpointDescriber(config.describe_url, config.describe_model)
    sections = []
    customized: dict[str, tuple[Section, dict[str, dict]]] = {}
    try:
        for raw in paths:
            path = Path(raw)
            kind = detect(path)
            logger.info("%s: %s", path, kind)
            if kind == "model":
                sections.append(_model_with_data(path, data, config, featurize, cache, describe))
            elif kind == "customized":
                section, accuracy = _customized_with_data(path, data, config, featurize, cache)
                sections.append(section)
                if accuracy:
                    customized[section.title] = (section, accuracy)
            elif kind == "kshot":
                sections.append(kshot_section(path))
            elif kind == "analyze":
                sections.append(analyze_section(path))
            elif kind == "labels":
                sections.append(labels_section(path))
            else:
                sections.append(collection_section(path))
    finally:
        if describe is not None:
            describe.close()
    if len(customized) > 1:  # the comparison goes under the last of them
        last = list(customized.values())[-1][0]
        last.blocks.append(dsp_table({name: rows for name, (_, rows) in customized.items()}))
    return sections


def render(sections: Sequence[Section], *, title: str = "pluralrm report") -> str:
    """The page as HTML text."""
    environment = Environment(
        loader=PackageLoader("pluralrm.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html").render(
        title=title,
        sections=sections,
        version=pluralrm.__version__,
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def write_report(sections: Sequence[Section], out: str | Path, *, title: str = "pluralrm report") -> Path:
    """Render ``sections`` and write the page atomically to ``out``."""
    out = Path(out)
    html = render(sections, title=title)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    return out
