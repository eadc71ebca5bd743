"""The demo's report, on the built-in data with the real MiniLM: the automatic names of the top heads say
the known attributes, and the page works in a real browser (Debian's Chromium, driven by Playwright):
no console errors, every section there, a response holding a ``<script>`` shown as text and never run.

With ``PLURALRM_WRITE_SCREENSHOTS=1`` the screenshot goes to docs/img/report.png (the one committed there).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from tests.label.test_browser import ARGS, CHROMIUM, DOCS_IMG, _chromium_or_skip
from tests.report.conftest import SCRIPT, kshot_folder, label_project, names_known_attribute

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of the demo (about half a minute), shared by the tests of this module."""
    from pluralrm.demo import run_demo

    root = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLURALRM_CACHE", str(root / "cache"))
        return run_demo(root / "out")


def test_the_top_heads_are_named_after_the_known_attributes(demo):
    """For each of the top five heads, its known attribute is the ground-truth attribute gap its margins
    correlate with most (the demo's head table); its automatic name is read from the texts alone."""
    top = demo.attribute_rows[:5]
    verdicts = [
        (row["head"], demo.head_names[row["head"]], row["attribute"], round(row["correlation"], 2))
        for row in top
    ]
    hits = [names_known_attribute(name, attribute, r) for _, name, attribute, r in verdicts]
    assert sum(hits) >= 3, verdicts
    summary = json.loads((demo.out / "summary.json").read_text())
    assert summary["head_names"] == demo.head_names
    assert (demo.out / "report.html").exists()


def _open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1280, "height": 1800}).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, errors


def test_the_report_in_a_browser(demo, tmp_path):
    sync_playwright = _chromium_or_skip()
    shots = DOCS_IMG if os.environ.get("PLURALRM_WRITE_SCREENSHOTS") == "1" else tmp_path
    # A second page: the demo's model read on pairs whose texts carry markup, beside a kshot run and a
    # labelling project whose prompts do too.
    rng = np.random.default_rng(0)
    data = tmp_path / "hostile.jsonl"
    with open(data, "w") as handle:
        for i in range(12):
            chosen = f"Answer {i}: {SCRIPT}" if i == 0 else f"Answer {i} " * int(rng.integers(1, 6))
            handle.write(
                json.dumps(
                    {
                        "prompt": f"<img src=x onerror=alert(1)> q{i}?",
                        "chosen": chosen,
                        "rejected": f"No {i}.",
                        "user": "ab"[i % 2],
                    }
                )
                + "\n"
            )
    hostile = tmp_path / "hostile.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(demo.out / "model"),
            str(kshot_folder(tmp_path)),
            str(label_project(tmp_path, SCRIPT)),
            "--data",
            str(data),
            "--out",
            str(hostile),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page, errors = _open_page(browser, (demo.out / "report.html").as_uri())
            for heading in (
                "Held-out accuracy per head",
                "Automatic head names",
                "What each head means",
                "Users: weights fitted",
                "Built-in data: the known attribute",
            ):
                assert page.get_by_text(heading).count() >= 1, heading
            assert page.locator("section.input").count() == 1
            assert page.locator(".head").count() == 8
            assert page.locator("img").count() >= 3
            assert all(
                page.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
            )
            page.locator("details").first.evaluate("d => d.open = true")
            page.screenshot(path=str(shots / "report.png"))
            assert errors == []

            page, errors = _open_page(browser, hostile.as_uri())
            assert [page.locator("section.input").nth(i).get_attribute("data-kind") for i in range(3)] == [
                "model",
                "kshot",
                "labels",
            ]
            page.locator("details").evaluate_all("ds => ds.forEach(d => d.open = true)")
            assert page.get_by_text("window.__pwned = 1", exact=False).count() >= 1  # shown as text
            assert page.evaluate("window.__pwned") is None  # and never run
            assert page.evaluate("document.querySelectorAll('script').length") == 0
            assert page.get_by_text("onerror=alert(1)", exact=False).count() >= 1
            assert errors == []
        finally:
            browser.close()
