"""Several labellers at once against a real uvicorn server: no label lost, none counted twice."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx
import pytest

from pluralrm.label.app import create_label_app
from pluralrm.label.store import LabelStore, PairToLabel
from tests.servers import free_port, served_in_thread

N_PAIRS = 24
N_LABELLERS = 6


@pytest.fixture
def server(tmp_path):
    """A uvicorn server on a free loopback port in a thread, with the store behind it."""
    store = LabelStore.of_project(tmp_path / "project")
    store.import_pairs([PairToLabel(f"p{i:02d}", f"prompt {i}", f"A{i}", f"B{i}") for i in range(N_PAIRS)])
    tokens = {f"l{i}": store.add_labeller(f"l{i}") for i in range(N_LABELLERS)}
    with served_in_thread(create_label_app(store), "the labelling server") as url:
        yield url, store, tokens


def _labeller(
    urls: list[str], token: str, seed: int, start: threading.Barrier, log: list, errors: list
) -> None:
    """Label until nothing is left; every third pair is answered twice (the second answer must win).

    Each request goes to one of ``urls`` at random (several servers on one store).
    """
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(headers=headers, timeout=60) as client:
            start.wait()
            while True:
                shown = client.get(rng.choice(urls) + "/api/next")
                if shown.status_code == 204:
                    return
                shown.raise_for_status()
                pair_id = shown.json()["pair_id"]
                answers = [rng.choice(["1", "2", "tie"]) for _ in range(2 if rng.random() < 1 / 3 else 1)]
                for choice in answers:
                    posted = client.post(
                        rng.choice(urls) + "/api/labels",
                        json={"pair_id": pair_id, "choice": choice, "seconds": 1},
                    )
                    assert posted.json() == {"ok": True}, posted.text
                log.append((pair_id, shown.json()["response_1"], answers))
    except Exception as error:  # reported by the test, with the labeller's name
        errors.append(f"{token[:6]}…: {error!r}")


def _run_labellers(urls: list[str], store: LabelStore, tokens: dict[str, str]) -> None:
    """All labellers at once until nothing is left; then check that no label was lost or counted twice."""
    start = threading.Barrier(len(tokens))
    logs = {name: [] for name in tokens}
    errors: list[str] = []
    threads = [
        threading.Thread(target=_labeller, args=(urls, token, i, start, logs[name], errors))
        for i, (name, token) in enumerate(tokens.items())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    labels = store.labels()
    # Every pair went to exactly two labellers: nobody's label was dropped, none was counted twice.
    assert Counter(label.pair_id for label in labels) == {f"p{i:02d}": 2 for i in range(N_PAIRS)}
    assert len({(label.labeller, label.pair_id) for label in labels}) == len(labels) == 2 * N_PAIRS
    stored = {(label.labeller, label.pair_id): label for label in labels}
    for name, log in logs.items():
        assert {(name, pair_id) for pair_id, _, _ in log} == {key for key in stored if key[0] == name}
        for pair_id, first_text, answers in log:
            label = stored[(name, pair_id)]
            last = answers[-1]
            expected = last if last == "tie" else "a" if (last == "1") == first_text.startswith("A") else "b"
            assert label.choice == expected, (name, pair_id)
            assert label.revisions == len(answers) - 1


def test_concurrent_labellers_lose_no_label_and_double_count_none(server):
    url, store, tokens = server
    _run_labellers([url], store, tokens)


def test_two_server_processes_on_one_store(tmp_path):
    """Two `pluralrm label serve` processes share the SQLite store; requests alternate between them."""
    project = tmp_path / "project"
    store = LabelStore.of_project(project)
    store.import_pairs([PairToLabel(f"p{i:02d}", f"prompt {i}", f"A{i}", f"B{i}") for i in range(N_PAIRS)])
    tokens = {f"l{i}": store.add_labeller(f"l{i}") for i in range(N_LABELLERS)}
    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "pluralrm", "label", "serve", str(project), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 60
        for url, process in zip(urls, servers, strict=True):
            while True:
                try:
                    httpx.get(url + "/signin")
                    break
                except httpx.ConnectError:
                    assert process.poll() is None and time.monotonic() < deadline, "a server did not start"
                    time.sleep(0.2)
        _run_labellers(urls, store, tokens)
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            process.wait(timeout=30)
