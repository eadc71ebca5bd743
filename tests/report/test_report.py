"""The report page: every kind of input detected and given its section, numbers from the library's own
functions, every text from data escaped, an LM description only over a configured endpoint."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI, Request
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.config import REPORT, replace
from pluralrm.label.agreement import cohen_kappa
from pluralrm.report import build_sections, detect, model_section, render, write_report
from tests.report.conftest import (
    SCRIPT,
    analyze_folder,
    customized_folder,
    known_attribute_rows,
    kshot_folder,
    label_project,
    names_known_attribute,
)
from tests.servers import served_in_thread


def test_the_model_section_names_heads_and_escapes_texts(fitted):
    model, features, records = fitted
    section, meanings = model_section(model, title="m", source="mem", features=features, records=records)
    # The features are a linear image of the known attributes, so the top heads track them: the names,
    # read from the texts alone, say which.
    assert len(meanings) == 6
    known = known_attribute_rows(model, features, records, top=6)
    hits = [names_known_attribute(m.name, a, r) for m, (a, r) in zip(meanings, known, strict=True)]
    assert sum(hits) >= 4, [(m.name, a, round(r, 2)) for m, (a, r) in zip(meanings, known, strict=True)]
    html = render([section])
    assert SCRIPT not in html and "&lt;script&gt;window.__pwned" in html
    assert "<script" not in html.lower()
    # Accuracy rows come from evaluate_model: general head first, intervals around each accuracy.
    table = next(b for b in section.blocks if b.kind == "table" and b.caption.startswith("Held-out accuracy"))
    general = table.rows[0]
    assert general[0] == "general"
    low, high = map(float, general[2].split("–"))
    assert low <= float(general[1]) <= high
    users = next(b for b in section.blocks if b.kind == "table" and b.caption.startswith("Users"))
    assert {row[0] for row in users.rows} == set(features.users)


def test_without_pairs_the_model_section_says_what_is_missing(fitted, tmp_path):
    model, _, _ = fitted
    model.save_pretrained(tmp_path / "model")
    (section,) = build_sections([tmp_path / "model"])
    assert section.kind == "model"
    assert any("--data" in note for note in section.notes)
    assert [b.kind for b in section.blocks] == ["text", "figure"]


def test_every_kind_is_detected_and_gets_its_section(fitted, tmp_path):
    from pluralrm.collect.provenance import FilterCount, StageManifest, write_manifest

    model, _, _ = fitted
    model.save_pretrained(tmp_path / "model")
    collection = label_project(tmp_path / "c")
    write_manifest(
        collection,
        StageManifest(
            "filter",
            outputs={"pairs-to-label.jsonl": 6},
            status="complete",
            filters=[FilterCount("empty", 10, 8, 0.1)],
        ),
    )
    labels = label_project(tmp_path)
    paths = [
        tmp_path / "model",
        kshot_folder(tmp_path),
        analyze_folder(tmp_path),
        labels,
        labels / "labels.sqlite",
        customized_folder(tmp_path),
        collection,
    ]
    assert [detect(p) for p in paths] == [
        "model",
        "kshot",
        "analyze",
        "labels",
        "labels",
        "customized",
        "collection",
    ]
    sections = build_sections(paths)
    html = write_report(sections, tmp_path / "report.html").read_text()
    assert html.count('<section class="input"') == len(paths)
    assert html.count("data:image/png;base64,") >= 6
    assert "http://" not in html and "https://" not in html  # nothing fetched
    # κ of the two labellers is the agreement module's: ann always "yes", bo "yes" on four of six.
    kappa_table = next(b for b in sections[3].blocks if b.kind == "table" and "κ" in b.caption)
    expected = cohen_kappa(["a"] * 6, ["a"] * 4 + ["b"] * 2)
    assert kappa_table.rows == [
        ["ann", "bo", "6", f"{expected:.3f}" if expected == expected else "–", "0.667"]
    ]
    kshot = sections[1]
    mean = next(b for b in kshot.blocks if b.kind == "table" and b.caption.startswith("Accuracy"))
    assert mean.rows[0] == ["map", "0.550", "0.600", "0.650"]
    chosen = next(b for b in kshot.blocks if b.kind == "table" and b.caption.startswith("Chosen"))
    assert chosen.rows == [["alice", "layer 3", "map"], ["bob", "layer 3", "map"]]
    stages = next(b for b in sections[5].blocks if b.kind == "table")
    assert stages.rows[0][:2] == ["general", "minilm"] and stages.rows[0][5] == "0.750"
    assert any(b.kind == "figure" for b in sections[5].blocks)  # the curves
    filters = next(b for b in sections[6].blocks if b.kind == "table" and b.caption.startswith("What each"))
    assert filters.rows == [["filter", "empty", "10", "8", "2"]]


def test_a_path_that_is_no_report_input_is_refused_with_what_was_looked_for(tmp_path):
    with pytest.raises(ValueError, match=r"not a report input.*kshot\.csv"):
        detect(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        detect(tmp_path / "missing")


def test_the_cli_writes_one_page(tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(kshot_folder(tmp_path)),
            str(label_project(tmp_path, "<b>bold?</b>")),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert 'data-kind="kshot"' in html and 'data-kind="labels"' in html
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nothing"), "--out", str(out)])
    assert bad.exit_code != 0 and "no such file" in bad.output


def test_an_lm_describes_each_head_only_over_a_configured_endpoint(fitted):
    """A stand-in OpenAI-compatible server: each head is sent its automatic name and pairs, and its answer
    (markup included) lands on the page escaped."""
    model, features, records = fitted
    seen: list[dict] = []
    server = FastAPI()

    @server.post("/v1/chat/completions")
    async def chat(request: Request):
        payload = await request.json()
        seen.append(payload)
        name = re.search(r"Automatic name: (.*)", payload["messages"][-1]["content"]).group(1)
        return {
            "model": payload["model"],
            "choices": [{"message": {"content": f"<i>likes</i> {name}"}, "finish_reason": "stop"}],
        }

    from pluralrm.report.describe import EndpointDescriber

    with served_in_thread(server, "the stand-in LM server") as url:
        describer = EndpointDescriber(url, "stand-in")
        config = replace(REPORT, heads=3)
        section, meanings = model_section(
            model,
            title="m",
            source="mem",
            features=features,
            records=records,
            config=config,
            describe=describer,
        )
        describer.close()
    assert len(seen) == 3 and all(p["model"] == "stand-in" and p["temperature"] == 0.0 for p in seen)
    assert [m.description for m in meanings] == [f"<i>likes</i> {m.name}" for m in meanings]
    html = render([section])
    assert "&lt;i&gt;likes&lt;/i&gt;" in html and "<i>likes</i>" not in html
    # Without a URL no describer is made and no description is shown.
    _, plain_meanings = model_section(
        model, title="m", source="mem", features=features, records=records, config=config
    )
    assert all(m.description is None for m in plain_meanings)


def test_models_read_on_pairs_through_the_cli_with_tiny_backbones(tiny_model_dirs, tmp_path):
    """The --data path end to end: pairs featurized by each model's own featurizer; a real (tiny) customized
    model gets its stages, curves and accuracy per subset, and two of them the side-by-side (DSP) table."""
    import json
    import shutil

    from tests.training.conftest import rule_pairs

    def write(path, records):
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    train = write(tmp_path / "train.jsonl", rule_pairs(6, subset="academy") + rule_pairs(2, subset="other"))
    data = write(
        tmp_path / "pairs.jsonl",
        [{**p, "prompt": f"New {p['prompt']}", "id": f"n{p['id']}"} for p in rule_pairs(3, subset="academy")]
        + [
            {**p, "prompt": f"Other {p['prompt']}", "id": f"o{p['id']}"}
            for p in rule_pairs(2, subset="other")
        ]
        + [{"prompt": "p", "chosen": "same", "rejected": "same"}],  # identical: skipped and counted
    )
    runner = CliRunner()
    model = tmp_path / "model"
    made = runner.invoke(
        app,
        ["decompose", str(train), "--backbone", str(tiny_model_dirs["bert"]), "--components", "4",
         "--device", "cpu", "--out", str(model)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    rm = tmp_path / "rm-a"
    tuned = runner.invoke(
        app,
        ["customize", str(train), "--base", str(tiny_model_dirs["llama"]), "--out", str(rm), "--epochs", "1",
         "--batch-size", "4", "--device", "cpu", "--dtype", "float32", "--no-progress"],
    )  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    shutil.copytree(rm, tmp_path / "rm-b")
    out = tmp_path / "r.html"
    result = runner.invoke(
        app,
        ["report", str(model), str(rm), str(tmp_path / "rm-b"), "--data", str(data),
         "--heads", "3", "--device", "cpu", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert re.findall(r'data-kind="(\w+)"', html) == ["model", "customized", "customized"]
    assert "identical skipped" in html and html.count('class="head"') == 3
    assert "Accuracy on pairs.jsonl per subset" in html and "Training and validation curves" in html
    dsp = re.search(r"the DSP table\)</caption>(.*?)</table>", html, re.S).group(1)
    assert "<th>academy</th>" in dsp and "<th>other</th>" in dsp and dsp.count("<tr>") == 3
