"""Atomic writes: the file appears whole, and with the mode the umask gives any new file (not 0600)."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import numpy as np
import pytest

from pluralrm.atomic import atomic_path, temp_dir_beside, write_json, write_jsonl


@contextmanager
def umask(value: int):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_files_and_directories_get_the_umask_mode(tmp_path, mask, file_mode, dir_mode):
    with umask(mask):
        write_json(tmp_path / "a.json", {"x": 1})
        write_jsonl(tmp_path / "b.jsonl", [{"x": 1}, {"x": 2}])
        with atomic_path(tmp_path / "c.bin") as tmp:
            tmp.write_bytes(b"\x00\x01")
        built = temp_dir_beside(tmp_path / "d")
    assert {mode(tmp_path / n) for n in ("a.json", "b.jsonl", "c.bin")} == {file_mode}
    assert mode(built) == dir_mode and built.parent == tmp_path and built.name.startswith(".d.")
    assert (tmp_path / "b.jsonl").read_text() == '{"x": 1}\n{"x": 2}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".d." + built.name[3:],
        "a.json",
        "b.jsonl",
        "c.bin",
    ]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == '{\n  "old": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_a_saved_reward_model_directory_is_readable_by_others(tmp_path):
    from pluralrm.data.features import PairFeatures
    from pluralrm.rewards.fitting import fit_reward_model

    rng = np.random.default_rng(0)
    namespace = {
        "backbone": "dir:abc",
        "spec": {"pooling": "mean", "layer": -1, "normalize": False},
        "max_length": 64,
        "format_version": "1",
        "chat_template": False,
        "dtype": "float32",
    }
    chosen = (rng.normal(size=(40, 6)) + 0.5).astype(np.float32)
    rejected = rng.normal(size=(40, 6)).astype(np.float32)
    features = PairFeatures(
        chosen=chosen,
        rejected=rejected,
        ids=[str(i) for i in range(40)],
        namespace=namespace,
        backbone_name="tiny",
    )
    model = fit_reward_model(features)
    with umask(0o022):
        directory = model.save_pretrained(tmp_path / "drm")
    files = sorted(p for p in directory.iterdir())
    assert files and all(mode(p) == 0o644 for p in files), [(p.name, oct(mode(p))) for p in files]


def test_a_directory_written_by_others_gets_the_umask_mode(tmp_path):
    from pluralrm.atomic import apply_umask_modes

    build = tmp_path / "build"
    (build / "sub").mkdir(parents=True)
    for name in ("model.safetensors", "sub/x.json"):
        (build / name).write_text("{}")
        os.chmod(build / name, 0o600)  # what safetensors (and so save_pretrained) leaves
    os.chmod(build / "sub", 0o700)
    with umask(0o022):
        apply_umask_modes(build)
    assert mode(build / "model.safetensors") == mode(build / "sub/x.json") == 0o644
    assert mode(build) == mode(build / "sub") == 0o755
    assert sorted(p.name for p in build.iterdir()) == ["model.safetensors", "sub"]  # no probe left
