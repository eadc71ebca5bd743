"""`pluralrm label`: users add (token printed once), import, export, and help with an example."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pluralrm.cli import app
from pluralrm.label.store import LabelStore

runner = CliRunner()


def _write_pairs(path, n, **change):
    rows = [
        {
            "pair_id": f"p{i}",
            "prompt": f"prompt {i}",
            "response_a": f"A{i}",
            "response_b": f"B{i}",
            "ai_label": None,
            "ai_margin": None,
            "provenance": {"stage": "filtering"},
        }
        | change
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.mark.parametrize(
    "verb", ["label users add", "label users list", "label import", "label serve", "label export"]
)
def test_every_label_verb_has_help_with_an_example(verb):
    result = runner.invoke(app, [*verb.split(), "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_users_import_and_export(tmp_path):
    project = tmp_path / "project"
    added = runner.invoke(app, ["label", "users", "add", str(project), "ann"])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    store = LabelStore.of_project(project)
    assert store.labeller_for_token(token).name == "ann"
    assert runner.invoke(app, ["label", "users", "add", str(project), "ann"]).exit_code == 2
    admin = runner.invoke(app, ["label", "users", "add", str(project), "boss", "--admin"])
    assert store.labeller_for_token(admin.stdout.strip().splitlines()[-1]).is_admin
    listed = runner.invoke(app, ["label", "users", "list", str(project)])
    assert listed.stdout.splitlines() == ["ann", "boss\tadmin"]

    pairs = tmp_path / "pairs.jsonl"
    _write_pairs(pairs, 3)
    first = runner.invoke(app, ["label", "import", str(project), str(pairs)])
    assert first.exit_code == 0 and "imported 3 new pairs" in first.output
    again = runner.invoke(app, ["label", "import", str(project), str(pairs)])
    assert "imported 0 new pairs" in again.output and "3 already in the project" in again.output

    ann = store.labeller_for_token(token)
    for _ in range(3):
        shown, _ = store.next_for(ann, labels_per_pair=2, budget=None, reserve_seconds=900)
        store.record_label(ann, shown.pair_id, "1" if not shown.swapped else "2", seconds=1.0)  # always A
    out = tmp_path / "labels.jsonl"
    assert runner.invoke(app, ["label", "export", str(project), str(out)]).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["chosen"][0]["content"], r["labellers"]) for r in rows] == [
        (f"p{i}", f"A{i}", ["ann"]) for i in range(3)
    ]
    per = tmp_path / "per"
    assert runner.invoke(app, ["label", "export", str(project), str(per), "--per-labeller"]).exit_code == 0
    assert sorted(p.name for p in per.iterdir()) == ["ann.jsonl"]


def test_import_of_a_bad_file_names_line_and_field_and_imports_nothing(tmp_path):
    project, pairs = tmp_path / "project", tmp_path / "pairs.jsonl"
    _write_pairs(pairs, 2)
    pairs.write_text(pairs.read_text() + json.dumps({"pair_id": "x", "prompt": "p"}) + "\n")
    result = runner.invoke(app, ["label", "import", str(project), str(pairs)])
    assert result.exit_code == 2
    assert "pairs.jsonl, line 3, field 'response_a'" in " ".join(result.output.split())
    assert LabelStore.of_project(project).pairs() == []


def test_serve_starts_the_page_on_loopback(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    project = tmp_path / "project"
    token = LabelStore.of_project(project).add_labeller("ann")
    command = [sys.executable, "-m", "pluralrm", "label", "serve", str(project), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/next", headers={"Authorization": f"Bearer {token}"}
                )
                break
            except httpx.ConnectError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read().decode()
                time.sleep(0.2)
        assert response.status_code == 204  # no pairs imported: nothing to label
        assert httpx.get(f"http://127.0.0.1:{port}/signin").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
