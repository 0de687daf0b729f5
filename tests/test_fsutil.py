from __future__ import annotations

import json

import pytest

from devicelab.fsutil import atomic_write, atomic_write_json, new_run_dir


def test_run_dir_is_never_reused(tmp_path):
    first = new_run_dir(tmp_path, "exp")
    second = new_run_dir(tmp_path, "exp")
    third = new_run_dir(tmp_path, "exp")
    assert [p.name for p in (first, second, third)] == ["exp", "exp-2", "exp-3"]


def test_run_dir_name_is_sanitised(tmp_path):
    assert new_run_dir(tmp_path, "../../etc passwd").parent == tmp_path


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"ok": 1})

    def failing(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = atomic_write_json(tmp_path / "atomic.json", {})
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
