"""``verify``: stored files re-read and checked against their recorded digests, or against a local tree.

A memory backend recording SHA-256 digests stands for a backend that carries
``FileInfo.digest``; ``corrupt`` flips a byte behind its back (the recorded digest
and checksum stay), as storage rot would. ``mlartifacts verify`` runs in-process
with that plugin registered in the default registry for the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, default_registry
from mlartifacts.cli import run
from mlartifacts.testing.contract import random_bytes, write_tree

from ._digest_memory import BareMemory, DigestMemory, registry_with

TREE = {
    "model.bin": random_bytes(300_000, seed=3),
    "conf/params.json": b'{"lr": 0.1}',
    "empty": b"",
}


@pytest.fixture
def dmem() -> DigestMemory:
    return DigestMemory(limits=None)


@pytest.fixture
def store(dmem: DigestMemory, tmp_path: Path) -> Iterator[ArtifactStore]:
    with ArtifactStore("dmem://bucket/run", registry=registry_with(dmem)) as s:
        s.sync_from(write_tree(tmp_path / "src", TREE))
        yield s


def test_intact_files_verify_by_digest(store: ArtifactStore, dmem: DigestMemory) -> None:
    dmem.calls.clear()
    report = store.verify()
    assert report.ok and report.files == 3 and report.by_digest == 3
    assert report.size_only == [] and report.issues == []
    # Every file was read back (and nothing written).
    assert {key for hook, key in dmem.calls if hook == "read"} == {f"run/{k}" for k in TREE}
    assert not {hook for hook, _ in dmem.calls} & {"upload", "write", "delete", "download"}


def test_a_flipped_byte_is_found(store: ArtifactStore, dmem: DigestMemory) -> None:
    dmem.corrupt("bucket", "run/model.bin")
    report = store.verify()
    assert not report.ok
    assert [(i.path, i.problem) for i in report.issues] == [("model.bin", "digest")]
    assert TREE["model.bin"] != dmem.objects("bucket")["run/model.bin"]
    assert report.issues[0].detail.endswith(f"recorded {dmem.digests[('bucket', 'run/model.bin')]}")
    assert report.by_digest == 2


def test_one_file(store: ArtifactStore, dmem: DigestMemory) -> None:
    report = store.verify("conf/params.json")
    assert report.ok and report.files == 1 and report.by_digest == 1
    dmem.corrupt("bucket", "run/conf/params.json")
    assert [(i.path, i.problem) for i in store.verify("conf/params.json").issues] == [
        ("params.json", "digest")
    ]


def test_a_truncated_object_is_found(store: ArtifactStore, dmem: DigestMemory) -> None:
    dmem.inject("read", None, corrupt=True, times=100, path="run/model.bin")  # short reads, every time
    report = store.verify()
    # Caught by the byte count here, or by the read path itself where it checks digests.
    assert [i.path for i in report.issues] == ["model.bin"]
    assert report.issues[0].problem in ("size", "digest")


def test_without_digests_files_are_unverifiable_not_failures(tmp_path: Path) -> None:
    bare = BareMemory(limits=None)
    with ArtifactStore("bare://b/x", registry=registry_with(bare)) as store:
        store.sync_from(write_tree(tmp_path / "src", TREE))
        report = store.verify()
        assert report.ok and report.by_digest == 0 and sorted(report.size_only) == sorted(TREE)
        strict = store.verify(require_digest=True)
        assert not strict.ok
        assert sorted((i.path, i.problem) for i in strict.issues) == sorted((k, "no-digest") for k in TREE)


def test_against_a_local_tree(store: ArtifactStore, dmem: DigestMemory, tmp_path: Path) -> None:
    local = tmp_path / "src"
    dmem.calls.clear()
    assert store.verify(against=local).ok
    assert {hook for hook, _ in dmem.calls} == {"list"}  # compared by listing, nothing read back
    (local / "conf/params.json").write_bytes(b'{"lr": 0.9}')  # same size, other content
    (local / "model.bin").write_bytes(b"short")
    (local / "only-here.txt").write_bytes(b"x")
    store.write_bytes("only-there.txt", b"y")
    report = store.verify(against=local)
    assert sorted((i.path, i.problem) for i in report.issues) == [
        ("conf/params.json", "digest"),
        ("model.bin", "size"),
        ("only-here.txt", "missing"),
        ("only-there.txt", "extra"),
    ]
    assert report.by_digest == 1  # "empty"


@pytest.fixture
def registered(dmem: DigestMemory) -> Iterator[DigestMemory]:
    """The digest-recording backend in the default registry (what the CLI uses), for one test."""
    registry = default_registry()
    registry.register(dmem, "dmem-test")
    try:
        yield dmem
    finally:
        registry.unregister("dmem-test")


def test_cli_verify(registered: DigestMemory, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_tree(tmp_path / "src", TREE)
    assert run(["sync", "-q", str(src), "dmem://bkt/cli"]) == 0
    capsys.readouterr()
    assert run(["verify", "dmem://bkt/cli"]) == 0
    out = capsys.readouterr().out
    assert "3 files: 3 verified by digest" in out and "0 problems" in out

    registered.corrupt("bkt", "cli/conf/params.json")
    assert run(["verify", "dmem://bkt/cli"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("digest     conf/params.json: sha256 of the stored bytes is ")
    assert "1 problem" in out

    assert run(["verify", "dmem://bkt/cli/model.bin"]) == 0  # a URI naming one file
    assert "1 file: 1 verified by digest" in capsys.readouterr().out
    assert run(["verify", "dmem://bkt/cli/conf/params.json"]) == 1
    assert capsys.readouterr().out.startswith("digest     params.json: ")

    assert run(["verify", "--json", "dmem://bkt/cli", "--against", str(src)]) == 0  # the listing agrees
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["verified_by_digest"] == 3

    (src / "extra").write_bytes(b"e")
    assert run(["verify", "--json", "dmem://bkt/cli", "--against", str(src)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["issues"] == [
        {"path": "extra", "problem": "missing", "detail": "in the local tree, not in the store"}
    ]

    assert run(["verify", "dmem://bkt/cli", "--against", "s3://not/local"]) == 1
    assert "--against takes a local directory" in capsys.readouterr().err
    assert run(["verify", "dmem://bkt/nothing"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_verify_local_files_without_digests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store of the local disk: unverifiable by digest unless its backend records one."""
    store = write_tree(tmp_path / "store", TREE)
    code = run(["verify", "--json", str(store)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"]
    assert report["verified_by_digest"] + len(report["unverifiable_by_digest"]) == 3
    strict = run(["verify", "--require-digest", "--json", str(store)])
    report = json.loads(capsys.readouterr().out)
    assert strict == (0 if report["verified_by_digest"] == 3 else 1)
