"""Files changed behind a path store's back: their digest record is stale, and that is reported.

A path store records each file's SHA-256 with the size and time the file had then
(on the local disk: the ``user.mlartifacts.sha256`` attribute). A file rewritten by
another tool keeps a record that no longer describes it: ``verify`` reports it as
*changed* since it was recorded (exit 1), not as "no digest recorded"; ``sync``
copies it again rather than trust equal sizes. The store here is the local disk
(the nfs plugin), changed with plain file operations.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, FileInfo
from mlartifacts.cli import run
from mlartifacts.server import ServerConfig, create_app
from mlartifacts.sync import decide
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree

from .conftest import API, serve_app

TREE = {
    "model.bin": random_bytes(200_000, seed=5),
    "conf/params.json": b'{"lr": 0.1}',
}
OTHER = b'{"lr": 0.7}'  # as long as params.json


def stored_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A local tree and a store holding it (uploaded: every file has its digest recorded)."""
    src = write_tree(tmp_path / "src", TREE)
    root = tmp_path / "store"
    with ArtifactStore(str(root)) as store:
        assert len(store.sync_from(src).copied) == len(TREE)
        assert all(info.digest for info in store.iter_files())
    return src, root


def rewrite_outside(path: Path, data: bytes) -> None:
    """Another tool rewrites the file in place (the attribute stays; the size or time change)."""
    before = path.stat().st_mtime
    path.write_bytes(data)
    if path.stat().st_mtime == before:  # a coarse clock: make the change visible, as time would
        os.utime(path, (before + 2, before + 2))


def test_the_record_of_a_changed_file_is_stale_not_current(tmp_path: Path) -> None:
    _, root = stored_tree(tmp_path)
    rewrite_outside(root / "conf/params.json", OTHER)
    with ArtifactStore(str(root)) as store:
        info = store.stat("conf/params.json")
        listed = {i.path: i for i in store.iter_files()}["conf/params.json"]
        model = store.stat("model.bin")
    for entry in (info, listed):
        assert entry.digest is None  # never used to check the bytes
        assert entry.stale_digest is not None and len(entry.stale_digest) == 64
    assert model.digest is not None and model.stale_digest is None


@pytest.mark.parametrize("new", [OTHER, b'{"lr": 0.1, "x": 1}'], ids=["same-size", "other-size"])
def test_verify_reports_a_file_changed_since_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], new: bytes
) -> None:
    _, root = stored_tree(tmp_path)
    rewrite_outside(root / "conf/params.json", new)
    assert run(["verify", "--json", str(root)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    assert report["unverifiable_by_digest"] == []  # not "no digest recorded"
    assert report["verified_by_digest"] == 1
    [issue] = report["issues"]
    assert issue["path"] == "conf/params.json" and issue["problem"] == "changed"
    assert "changed in the store since its digest was recorded" in issue["detail"]
    assert run(["verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert "changed    conf/params.json: changed in the store since its digest was recorded" in out
    assert "no digest recorded" not in out
    assert "1 problem" in out


def test_verify_through_the_service_reports_a_file_changed_since_recorded(tmp_path: Path) -> None:
    """The service's listing carries the stale record, so a client's verify sees the change too."""
    _, root = stored_tree(tmp_path)
    rewrite_outside(root / "conf/params.json", OTHER)
    app = create_app(ServerConfig(artifacts_destination=str(root)))
    with serve_app(app) as url, ArtifactStore(url + API) as store:
        listed = {i.path: i for i in store.iter_files()}
        report = store.verify()
    assert listed["conf/params.json"].digest is None and listed["conf/params.json"].stale_digest
    assert listed["model.bin"].digest and listed["model.bin"].stale_digest is None
    assert not report.ok and report.size_only == []
    [issue] = report.issues
    assert (issue.path, issue.problem) == ("conf/params.json", "changed")


def test_a_file_only_touched_still_verifies_by_its_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its time changed, its bytes did not: they match the record, which is what verify checks."""
    _, root = stored_tree(tmp_path)
    later = time.time() + 5
    os.utime(root / "model.bin", (later, later))
    assert run(["verify", "--json", str(root)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified_by_digest"] == 2 and report["issues"] == []


def test_verify_against_a_local_tree_reports_a_changed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, root = stored_tree(tmp_path)
    rewrite_outside(root / "conf/params.json", OTHER)  # same size as the local file
    assert run(["verify", "--json", str(root), "--against", str(src)]) == 1
    [issue] = json.loads(capsys.readouterr().out)["issues"]
    assert (issue["path"], issue["problem"]) == ("conf/params.json", "changed")


def test_sync_copies_a_destination_changed_since_recorded(tmp_path: Path) -> None:
    src, root = stored_tree(tmp_path)
    rewrite_outside(root / "conf/params.json", OTHER)  # same size: sizes cannot tell
    with ArtifactStore(str(root)) as store:
        assert store.sync_from(src, compare="size").copied == []  # asked for sizes only
        result = store.sync_from(src)
        assert [(a.path, a.reason) for a in result.copied] == [("conf/params.json", "changed")]
        assert store.sync_from(src).copied == []  # recorded afresh: unchanged now
        assert store.verify().ok
    assert read_tree(root) == TREE


def test_sync_copies_from_a_source_changed_since_recorded(tmp_path: Path) -> None:
    _, root = stored_tree(tmp_path)
    out = tmp_path / "out"
    with ArtifactStore(str(root)) as store:
        assert len(store.sync(out).copied) == len(TREE)
        rewrite_outside(root / "conf/params.json", OTHER)
        result = store.sync(out)  # the local side could be hashed, but the store's record is stale
        assert [(a.path, a.reason) for a in result.copied] == [("conf/params.json", "changed")]
    assert (out / "conf/params.json").read_bytes() == OTHER


def test_decide_with_a_stale_record() -> None:
    fresh = FileInfo("a", False, 5, digest="a" * 64)
    stale = FileInfo("a", False, 5, stale_digest="a" * 64)
    assert decide(fresh, stale) == "changed"
    assert decide(stale, fresh) == "changed"
    assert decide(stale, stale, compare="size") is None
    assert decide(fresh, FileInfo("a", False, 6, stale_digest="a" * 64)) == "size"
    assert decide(fresh, fresh, "digest", "sha256", "a" * 64, "a" * 64) is None
