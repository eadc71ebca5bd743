"""The examples run as a newcomer runs them, and say what they claim (real MiniLM, so marked slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_decomposed_reward_personalizes_a_user_the_pool_never_saw(capsys):
    result = _load("decomposed_reward").main(["--prompts", "24", "--user", "cautious"])
    printed = capsys.readouterr().out
    # The pool dislikes refusals and 'cautious' wants them: the pool's general head is worse than a coin
    # flip for this user (measured 0.30), and 20 of their pairs turn it around (measured 0.69).
    assert result["general_accuracy"] < 0.5
    assert result["personal_accuracy"] > 0.6
    assert result["personal_accuracy"] > result["general_accuracy"] + 0.2
    assert result["adapter"] == "map"  # auto on a model that records no adapter choice
    assert result["n_adapt_pairs"] == 20 and result["n_test_pairs"] > 50
    # The general head is the pool's consensus: it beats a coin flip on the pool's held-out prompts.
    assert result["head_accuracy"]["general"] > 0.55
    # What it prints is what it returns.
    line = next(line for line in printed.splitlines() if line.startswith("cautious on "))
    assert f"general head {result['general_accuracy']:.3f}" in line
    assert f"(map) {result['personal_accuracy']:.3f}" in line
