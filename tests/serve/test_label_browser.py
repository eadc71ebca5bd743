"""The loop on the real page in Debian's Chromium: a scripted labeller signs in on the page of
``pluralrm serve --label`` with their server token and answers 10 pairs chosen by the active rule for
their profile; after each
answer their served profile holds it, and at the end their served reward's accuracy on their held-out
pairs is printed next to the same flow with 10 random pairs (``pytest -s`` shows it; the tiny random
backbone makes the numbers a smoke check — ``benchmarks/label_loop.py`` measures them with MiniLM).
"""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
import numpy as np

from pluralrm.adapt.active import DEFAULT_STRATEGY
from pluralrm.config import LABEL
from pluralrm.label.store import LabelStore, PairToLabel
from tests.label.test_browser import ARGS, CHROMIUM, _chromium_or_skip
from tests.serve.conftest import ADMIN_TOKEN
from tests.servers import served_in_thread

USER = "formal"  # one of the synthetic users: the scripted labeller answers as they would
N_LABELS = 10


def _split(synthetic_pairs):
    """The user's pairs split by prompt: the page's candidates, and held-out pairs on other prompts."""
    mine = [p for p in synthetic_pairs if p["user"] == USER]
    prompts = list(dict.fromkeys(p["prompt"] for p in mine))
    asked = set(prompts[: len(prompts) * 2 // 3])
    return [p for p in mine if p["prompt"] in asked], [p for p in mine if p["prompt"] not in asked]


def _run_flow(tmp_path, served_model_dir, candidates, held_out, strategy: str) -> tuple[float, list[str]]:
    """Serve, sign in, answer N_LABELS pairs with the keys; the held-out accuracy and the pairs asked."""
    from playwright.sync_api import expect

    from pluralrm.serve import create_app

    sync_playwright = _chromium_or_skip()
    project = LabelStore.of_project(tmp_path / strategy / "project")
    # Response a is the preferred one on every other pair, so the screen order tells the labeller nothing.
    project.import_pairs(
        [
            PairToLabel(
                f"q{i}",
                p["prompt"],
                *((p["chosen"], p["rejected"]) if i % 2 else (p["rejected"], p["chosen"])),
            )
            for i, p in enumerate(candidates)
        ]
    )
    preferred = {p["chosen"] for p in candidates}
    app = create_app(
        served_model_dir,
        store=tmp_path / strategy / "profiles.sqlite",
        admin_token=ADMIN_TOKEN,
        device="cpu",
        label=project,
        label_config=replace(LABEL, strategy=strategy),
    )
    with served_in_thread(app, "the reward server with the labelling page") as url:
        api = httpx.Client(base_url=url, timeout=60)
        token = api.post(
            "/v1/users", json={"user": USER}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ).json()["token"]
        mine = {"Authorization": f"Bearer {token}"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_context().new_page()
                page.goto(f"{url}/label/signin")
                page.fill("#token", token)
                page.click("button[type=submit]")
                expect(page.locator("#progress-text")).to_have_text(f"0 of {len(candidates)}")
                asked = []
                for k in range(1, N_LABELS + 1):
                    page.wait_for_selector("#label-form[data-ready='1']")
                    asked.append(page.locator("#label-form").get_attribute("data-pair"))
                    first = page.locator("#response-1 .text").inner_text()
                    page.keyboard.press("1" if first.strip() in {t.strip() for t in preferred} else "2")
                    expect(page.locator("#progress-text")).to_have_text(f"{k} of {len(candidates)}")
                    # The served profile holds the label: poll with a generous deadline.
                    deadline = time.monotonic() + 30
                    while (
                        got := api.get(f"/v1/users/{USER}", headers=mine)
                    ).status_code != 200 or got.json()["n_pairs"] < k:
                        assert time.monotonic() < deadline, f"label {k} never reached the profile: {got.text}"
                        time.sleep(0.05)
            finally:
                browser.close()
        assert len(set(asked)) == N_LABELS
        right = []
        for prompt in dict.fromkeys(p["prompt"] for p in held_out):
            pairs = [
                {"chosen": p["chosen"], "rejected": p["rejected"]} for p in held_out if p["prompt"] == prompt
            ]
            reply = api.post("/v1/score", json={"prompt": prompt, "pairs": pairs, "user": USER}, headers=mine)
            assert reply.status_code == 200, reply.text
            right += [m > 0 for m in reply.json()["margins"]]
        api.close()
    return float(np.mean(right)), asked


def test_ten_labels_on_the_page_make_the_served_personal_reward(tmp_path, served_model_dir, synthetic_pairs):
    candidates, held_out = _split(synthetic_pairs)
    active, asked_active = _run_flow(tmp_path, served_model_dir, candidates, held_out, DEFAULT_STRATEGY)
    random, asked_random = _run_flow(tmp_path, served_model_dir, candidates, held_out, "random")
    print(
        f"\n{USER}: served per-user accuracy on {len(held_out)} held-out pairs after {N_LABELS} labels on "
        f"the page — active ({DEFAULT_STRATEGY}): {active:.3f}, random: {random:.3f}"
    )
    assert asked_active != asked_random  # the two rules asked different pairs
    assert 0.0 <= active <= 1.0 and 0.0 <= random <= 1.0
