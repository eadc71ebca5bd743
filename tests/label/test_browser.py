"""The labelling page in a real browser: headless Chromium (Debian's package) driven by Playwright (Python).

Signs in (a wrong token first), labels with the keys 1 / 2 / t / s and with the mouse, watches the progress
bar, then an admin sees counts and κ and downloads the export. With ``PLURALRM_WRITE_SCREENSHOTS=1`` the
two screenshots go to docs/img/ (the ones committed there); otherwise into the test's tmp_path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from pluralrm.label.app import create_label_app
from pluralrm.label.io import export_rows
from pluralrm.label.store import LabelStore, PairToLabel
from tests.servers import served_in_thread

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
PAIRS = [
    (
        "How do I keep basil alive indoors?",
        "Give it a south-facing window (6+ hours of sun), water when the top 2 cm of soil is dry, and pinch "
        "off flower buds so the plant keeps making leaves.",
        "Basil is a herb. Many people like basil. It is green and it is used in cooking in many countries.",
    ),
    (
        "Explain recursion to a ten-year-old.",
        "Imagine a set of nesting dolls: to find the smallest one you open a doll, and if there is another "
        "doll inside you do the same thing again, until there is nothing left to open.",
        "Recursion is when a function calls itself with a smaller input until it reaches a base case.",
    ),
    ("What is 17 × 23?", "17 × 23 = 391.", "17 × 23 is about 400."),
    (
        "Write a haiku about autumn.",
        "Red maple letting\ngo of every leaf at once —\nthe wind keeps nothing.",
        "Autumn leaves fall down\nthey are orange and yellow\nit is autumn now",
    ),
    (
        "Is it safe to mix bleach and vinegar?",
        "No: together they release toxic chlorine gas.",
        "Yes, it cleans well.",
    ),
    ("Name a prime number above 100.", "101.", "There are many, for example 111."),
]


def _chromium_or_skip():
    if not CHROMIUM.exists():
        message = (
            "no /usr/bin/chromium: install Debian's browser with `apt-get install chromium` "
            "(.ci/run does it) to run the browser test"
        )
        if os.environ.get("PLURALRM_REQUIRE_BROWSER") == "1":  # CI: the browser test must run
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "playwright is not installed: pip install playwright==1.65.2 (never `playwright install`)"
        )
    return sync_playwright


@pytest.fixture
def served(tmp_path):
    store = LabelStore.of_project(tmp_path / "project")
    store.import_pairs(
        [
            PairToLabel(f"q{i}", prompt, a, b, "a", 0.5 + i, {"stage": "filtering"})
            for i, (prompt, a, b) in enumerate(PAIRS)
        ]
    )
    tokens = {"ann": store.add_labeller("ann"), "bo": store.add_labeller("bo")}
    tokens["admin"] = store.add_labeller("admin", admin=True)
    with served_in_thread(create_label_app(store), "the labelling server") as url:
        yield url, store, tokens


def test_sign_in_label_with_keys_and_mouse_admin_and_export(served, tmp_path):
    sync_playwright = _chromium_or_skip()
    from playwright.sync_api import expect

    url, store, tokens = served
    shots = DOCS_IMG if os.environ.get("PLURALRM_WRITE_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    ann = store.labeller_for_token(tokens["ann"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_context(viewport={"width": 1200, "height": 860}).new_page()
            # A wrong token: 401, and no pair text anywhere.
            page.goto(f"{url}/signin")
            page.fill("#token", "not-a-real-token")
            with page.expect_response(
                lambda r: r.url.endswith("/signin") and r.request.method == "POST"
            ) as sent:
                page.click("button[type=submit]")
            assert sent.value.status == 401
            expect(page.get_by_role("alert")).to_have_text("That token is not known here.")
            assert "basil" not in page.content()
            # The real token.
            page.fill("#token", tokens["ann"])
            page.click("button[type=submit]")
            expect(page.locator("#progress-text")).to_have_text("0 of 6")
            page.get_by_label("clear").check()
            page.screenshot(path=str(shots / "labelling-page.png"), full_page=True)
            answers = []  # (how, screen choice) in order
            for how, choice in [("key", "1"), ("key", "2"), ("key", "t"), ("mouse", "1"), ("mouse", "tie")]:
                done = len(answers)
                page.wait_for_selector("#label-form[data-ready='1']")  # the page's script is listening
                if how == "key":
                    page.keyboard.press(choice)
                elif choice == "tie":
                    page.get_by_role("button", name="Tie").click()
                else:
                    page.get_by_role("button", name=f"Response {choice} is better").click()
                answers.append({"t": "tie"}.get(choice, choice))
                expect(page.locator("#progress-text")).to_have_text(f"{done + 1} of 6")
            page.wait_for_selector("#label-form[data-ready='1']")
            page.keyboard.press("s")
            answers.append("skip")
            expect(page.locator("#done")).to_contain_text("All done")
            expect(page.locator("#progress-text")).to_have_text("6 of 6")
            labels = sorted(store.labels(ann), key=lambda label: label.labelled_at)
            assert [store.shown(ann, label.pair_id).choice for label in labels] == answers
            assert labels[0].tags == ("clear",) and all(label.seconds > 0 for label in labels)

            # A second labeller answers through the API (always the better-written response, the pair's
            # "a"), so the admin page has agreement to show.
            good = {a for _, a, _ in PAIRS}
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['bo']}"}) as bo:
                while (shown := bo.get("/api/next")).status_code == 200:
                    choice = "1" if shown.json()["response_1"] in good else "2"
                    posted = {"pair_id": shown.json()["pair_id"], "choice": choice, "seconds": 4}
                    assert bo.post("/api/labels", json=posted).json() == {"ok": True}
            assert {label.choice for label in store.labels() if label.labeller == "bo"} == {"a"}

            admin = browser.new_context(
                viewport={"width": 1200, "height": 860}, accept_downloads=True
            ).new_page()
            admin.goto(f"{url}/signin")
            admin.fill("#token", tokens["admin"])
            admin.click("button[type=submit]")
            expect(admin.locator("#totals")).to_contain_text("6 pairs")
            expect(admin.locator("#counts")).to_contain_text("ann")
            expect(admin.locator("#kappa")).to_contain_text("ann · bo")
            admin.screenshot(path=str(shots / "labelling-admin.png"), full_page=True)
            with admin.expect_download() as download:
                admin.click("#export")
            saved = tmp_path / "export.jsonl"
            download.value.save_as(saved)
            rows = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
            assert rows == export_rows(store) and rows
        finally:
            browser.close()
    for name in ("labelling-page.png", "labelling-admin.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
