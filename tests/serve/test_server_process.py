"""A real `pluralrm serve` process on loopback: concurrent profile updates lose nothing, and a server killed
with SIGKILL in the middle of profile writes restarts with every acknowledged update present."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import ADMIN_TOKEN, admin, bearer
from tests.servers import free_port


class Server:
    def __init__(self, model_dir: Path, store: Path, log: Path, extra: tuple[str, ...] = ()) -> None:
        self.model_dir, self.store, self.log, self.extra = model_dir, store, log, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> Server:
        env = {**os.environ, "PLURALRM_ADMIN_TOKEN": ADMIN_TOKEN}
        command = [
            sys.executable,
            "-m",
            "pluralrm",
            "serve",
            str(self.model_dir),
            "--profiles",
            str(self.store),
        ]
        command += ["--port", str(self.port), "--device", "cpu", *self.extra]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).json()["status"] == "ok":
                    return self
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"server did not start in {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server(served_model_dir, tmp_path):
    servers: list[Server] = []

    def make(*extra: str) -> Server:
        server = Server(
            served_model_dir, tmp_path / "profiles.sqlite", tmp_path / "server.log", extra
        ).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


def _pair(user: str, i: int) -> dict:
    return {
        "prompt": f"Question {i} from {user}?",
        "chosen": f"A careful answer {i}.",
        "rejected": f"Meh {i}.",
    }


async def _create_users(client: httpx.AsyncClient, users: list[str]) -> dict[str, str]:
    tokens = {}
    for user in users:
        reply = await client.post("/v1/users", json={"user": user}, headers=admin())
        tokens[user] = reply.json()["token"]
    return tokens


def test_concurrent_profile_updates_for_many_users_lose_nothing(server):
    live = server()
    users = [f"user{u}" for u in range(8)]

    async def run():
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
            tokens = await _create_users(client, users)

            async def post(user: str, i: int):
                body = {"pairs": [_pair(user, 2 * i), _pair(user, 2 * i + 1)]}
                reply = await client.post(
                    f"/v1/users/{user}/comparisons", json=body, headers=bearer(tokens[user])
                )
                assert reply.status_code == 200, reply.text
                return reply.json()["ids"]

            acked = await asyncio.gather(*(post(user, i) for i in range(5) for user in users))
            profiles = {
                u: (await client.get(f"/v1/users/{u}", headers=bearer(tokens[u]))).json() for u in users
            }
            return acked, profiles

    acked, profiles = asyncio.run(run())
    assert len({i for ids in acked for i in ids}) == 80
    assert {u: p["n_pairs"] for u, p in profiles.items()} == dict.fromkeys(users, 10)


def test_sigkill_during_profile_writes_keeps_every_acknowledged_update(server):
    live = server()
    users = [f"k{u}" for u in range(4)]
    acked: dict[str, list[int]] = {u: [] for u in users}

    async def hammer(writes_each: int, deadline: float) -> None:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            tokens = await _create_users(client, users)

            async def writer(user: str):
                i = 0
                while True:
                    body = {"pairs": [_pair(user, i)]}
                    try:
                        reply = await client.post(
                            f"/v1/users/{user}/comparisons", json=body, headers=bearer(tokens[user])
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    if reply.status_code == 200:
                        acked[user].extend(reply.json()["ids"])
                    i += 1

            tasks = [asyncio.create_task(writer(u)) for u in users]
            # Wait for a count, not a time: a slow shared machine only makes this take longer.
            give_up = asyncio.get_running_loop().time() + deadline
            while min(len(ids) for ids in acked.values()) < writes_each:
                assert asyncio.get_running_loop().time() < give_up, f"writes stalled: {acked}"
                await asyncio.sleep(0.05)
            live.kill()  # SIGKILL while the writers are mid-request
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)

    asyncio.run(hammer(writes_each=3, deadline=120.0))
    assert all(len(ids) >= 3 for ids in acked.values()), acked  # writes were really in flight

    restarted = server()
    for user in users:
        stored = httpx.get(f"{restarted.url}/v1/users/{user}/comparisons", headers=admin()).json()
        stored_ids = {c["id"] for c in stored}
        assert set(acked[user]) <= stored_ids, user
        assert len(stored_ids) - len(acked[user]) <= 1  # at most the one committed as the server died
        profile = httpx.get(f"{restarted.url}/v1/users/{user}", headers=admin()).json()
        assert profile["n_pairs"] == len(stored)  # the profile and its pairs were written together


def test_serve_with_a_labelling_project_asks_and_learns_in_one_process(server, tmp_path):
    from typer.testing import CliRunner

    from pluralrm.cli import app
    from pluralrm.label.store import LabelStore, PairToLabel

    project = tmp_path / "project"
    LabelStore.of_project(project).import_pairs(
        [PairToLabel(f"p{i}", f"Question {i}?", f"A careful answer {i}.", f"Meh {i}.") for i in range(6)]
    )
    issued = CliRunner().invoke(app, ["users", "token", "ann", "--store", str(tmp_path / "profiles.sqlite")])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    live = server("--label", str(project), "--strategy", "uncertainty")
    assert httpx.get(f"{live.url}/label/signin").status_code == 200
    shown = httpx.get(f"{live.url}/label/api/next", headers=bearer(token)).json()
    label = {"pair_id": shown["pair_id"], "choice": "1"}
    assert httpx.post(f"{live.url}/label/api/labels", json=label, headers=bearer(token)).status_code == 200
    profile = httpx.get(f"{live.url}/v1/users/ann", headers=bearer(token)).json()
    assert profile["n_pairs"] == 1
