"""``mlartifacts sync``: output, --dry-run, --delete, --json, exit codes; and through the artifacts service.

The service runs as operators run it (``mlartifacts server`` in a subprocess, on
local disk); its access log shows that a re-run over an unchanged tree only lists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore, default_registry
from mlartifacts.cli import run
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree
from mlartifacts.testing.servers import logged_requests, wait_for

from ._digest_memory import DigestMemory
from .conftest import API, RunningServer

TREE = {
    "model.bin": random_bytes(50_000, seed=5),
    "conf/params.json": b'{"lr": 0.1}',
    "conf/deep/notes.txt": b"notes",
    "data/0.csv": b"a,b\n1,2\n",
}


def log_mark(server: RunningServer, log: Path) -> int:
    """Mark the access log with a request; the index just past it, once it is written.

    A line is written after its response is sent: without a mark, lines of earlier
    requests could still arrive after a count is taken.
    """
    marker = f"mark-{uuid.uuid4().hex}"
    requests.get(f"{server.artifacts}?path={marker}", timeout=10)
    wait_for(lambda: any(marker in line for line in logged_requests(log)), 10, what="the access log")
    return next(i for i, line in enumerate(logged_requests(log)) if marker in line) + 1


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sync_local_dirs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = write_tree(tmp_path / "src", TREE), tmp_path / "dst"
    code, out, err = cli(capsys, "sync", str(src), str(dst))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "copy    conf/deep/notes.txt  (new)",
        "copy    conf/params.json  (new)",
        "copy    data/0.csv  (new)",
        "copy    model.bin  (new)",
        "copied 4 files (48.9 KiB), skipped 0 unchanged",
    ]
    assert read_tree(dst) == TREE
    assert cli(capsys, "sync", str(src), dst.as_uri()) == (
        0,
        "copied 0 files (0 B), skipped 4 unchanged\n",
        "",
    )

    (src / "data/0.csv").write_bytes(b"a,b\n1,2\n3,4\n")
    (src / "conf/deep/notes.txt").unlink()
    (dst / "stray.txt").write_bytes(b"stray")
    code, out, _ = cli(capsys, "sync", "--dry-run", "--delete", str(src), str(dst))
    assert code == 0
    assert out.splitlines() == [
        "copy    data/0.csv  (size)",
        "delete  conf/deep/notes.txt",
        "delete  stray.txt",
        "dry run: would copy 1 file (12 B), skipped 2 unchanged, would delete 2",
    ]
    assert (dst / "stray.txt").exists() and (dst / "data/0.csv").read_bytes() == TREE["data/0.csv"]

    code, out, _ = cli(capsys, "sync", str(src), str(dst))  # without --delete, extra files stay
    assert out.splitlines()[-1] == (
        "copied 1 file (12 B), skipped 2 unchanged, kept 2 only at the destination (--delete removes them)"
    )
    code, out, _ = cli(capsys, "sync", "--delete", "--json", str(src), str(dst))
    result = json.loads(out)
    assert result["copied"] == [] and result["skipped"] == 3 and result["dry_run"] is False
    assert sorted(d["path"] for d in result["deleted"]) == ["conf/deep/notes.txt", "stray.txt"]
    assert read_tree(dst) == read_tree(src)


def test_sync_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "sync", str(tmp_path / "missing"), str(tmp_path / "dst"))
    assert code == 1 and "does not exist" in err
    (tmp_path / "f").write_bytes(b"f")
    code, _, err = cli(capsys, "sync", str(tmp_path / "f"), str(tmp_path / "dst"))
    assert code == 1 and "is a file" in err and "use cp" in err
    code, _, err = cli(capsys, "sync", "nosuchscheme://x/y", str(tmp_path / "dst"))
    assert code == 1 and "nosuchscheme" in err
    with pytest.raises(SystemExit) as exit_info:
        run(["sync", "--compare", "fast", str(tmp_path), str(tmp_path / "dst")])
    assert exit_info.value.code == 2
    capsys.readouterr()


@pytest.fixture
def dmem() -> Iterator[DigestMemory]:
    """A digest-recording backend in the default registry (what the CLI uses), for one test."""
    plugin = DigestMemory("dmem-cli", limits=None)
    registry = default_registry()
    registry.register(plugin, "dmem-cli")
    try:
        yield plugin
    finally:
        registry.unregister("dmem-cli")


def test_sync_across_backends_through_the_service(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    dmem: DigestMemory,
    server: RunningServer,
    client_env: pytest.MonkeyPatch,
) -> None:
    """local -> a store recording digests -> the artifacts service -> local, each re-run a no-op."""
    src = write_tree(tmp_path / "src", TREE)
    mem = "dmem-cli://bucket/run"
    service = f"{server.artifacts}/sync/{uuid.uuid4().hex}"
    back = tmp_path / "back"
    hops = [(str(src), mem), (mem, service), (service, str(back))]
    for a, b in hops:
        code, out, err = cli(capsys, "sync", "--json", a, b)
        assert (code, err) == (0, "")
        assert sorted(c["path"] for c in json.loads(out)["copied"]) == sorted(TREE)
    assert read_tree(back) == TREE
    with ArtifactStore(service) as store:
        assert {i.path: store.read_bytes(i.path) for i in store.iter_files()} == TREE

    log = server.process.log  # type: ignore[union-attr]
    start = log_mark(server, log)
    dmem.calls.clear()
    for a, b in hops:
        code, out, _ = cli(capsys, "sync", "--json", a, b)
        result = json.loads(out)
        assert (code, result["copied"], result["skipped"]) == (0, [], len(TREE))
    assert {hook for hook, _ in dmem.calls} == {"list"}
    lines = logged_requests(log)[start : log_mark(server, log) - 1]
    assert lines and all(line.startswith("GET ") for line in lines)
    # Only listings: GET of a directory with ?path=, never of an artifact's bytes.
    assert all(f"{API} " in line or f"{API}?" in line for line in lines), lines

    # A change at the source travels all the way, and --delete follows a removal.
    (src / "conf/params.json").write_bytes(b'{"lr": 0.25}')
    (src / "model.bin").unlink()
    for a, b in hops:
        code, out, _ = cli(capsys, "sync", "--delete", "--json", a, b)
        result = json.loads(out)
        assert [c["path"] for c in result["copied"]] == ["conf/params.json"]
        assert [d["path"] for d in result["deleted"]] == ["model.bin"]
    assert read_tree(back) == read_tree(src)
