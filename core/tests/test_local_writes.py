"""``write_atomically``: a batch member's bytes appear whole under their name, or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mlartifacts import paths as _paths
from mlartifacts.errors import InvalidPath
from mlartifacts.transfer._local import DEFAULT_MODE, write_atomically


def test_writes_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "f.bin"  # a parent that does not exist yet
    write_atomically(str(target), b"first")
    write_atomically(str(target), b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert stat.S_IMODE(target.stat().st_mode) == DEFAULT_MODE  # not mkstemp's 0600
    assert os.listdir(target.parent) == ["f.bin"]


def test_a_directory_in_the_way_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_bytes(b"kept")
    with pytest.raises(InvalidPath, match="it is a directory"):
        write_atomically(str(tmp_path / "d"), b"x")
    assert sorted(os.listdir(tmp_path)) == ["d"]
    assert (tmp_path / "d" / "inside").read_bytes() == b"kept"


def test_a_stale_temporary_of_the_same_name_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools

    from mlartifacts.transfer import _local

    monkeypatch.setattr(_local, "_NAMES", itertools.count(7))
    stale = tmp_path / f"{_paths.TEMP_PREFIX}{os.getpid()}-7"
    stale.write_bytes(b"another process's")
    write_atomically(str(tmp_path / "f.bin"), b"mine")
    assert (tmp_path / "f.bin").read_bytes() == b"mine"
    assert stale.read_bytes() == b"another process's"
    assert sorted(os.listdir(tmp_path)) == sorted(["f.bin", stale.name])
