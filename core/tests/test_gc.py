"""`mlartifacts gc`: deleted runs' artifacts in both layouts, and stale multipart uploads."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, Capabilities, PluginRegistry, gc, hookimpl
from mlartifacts.cli import run
from mlartifacts.errors import NotSupported
from mlartifacts.gc import parse_duration
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.testing.contract import write_tree
from mlartifacts.testing.memory import MemoryBackend
from mlartifacts.testing.memory import plugin as memory


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "dest",
        {
            "1/run_a/artifacts/model.bin": b"m" * 1000,
            "1/run_a/artifacts/plots/loss.png": b"p" * 24,
            "1/run_b/artifacts/keep.txt": b"keep",
            "2/run_a/artifacts/other.bin": b"o" * 10,  # the same id in another experiment: also run_a's
            "experiments/7/run_c/artifacts/x.bin": b"x" * 100,
            "experiments/7/run_keep/artifacts/y.bin": b"y",
        },
    )


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_dry_run_reports_and_removes_nothing(destination: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = files(destination)
    code = run(
        ["gc", "--artifacts-destination", str(destination), "--run-ids", "run_a,run_c,ghost", "--dry-run"]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert files(destination) == before
    assert out == [
        "would remove run run_a: 1/run_a/ (2 files, 1.0 KiB)",
        "would remove run run_a: 2/run_a/ (1 files, 10 B)",
        "would remove run run_c: experiments/7/run_c/ (1 files, 100 B)",
        "no artifacts found for run ghost",
        "would free 1.1 KiB",
    ]


def test_removes_both_layouts(destination: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(["gc", "--artifacts-destination", str(destination), "--run-ids", "run_a, run_c", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["bytes_freed"] == 1000 + 24 + 10 + 100
    assert {r["path"] for r in report["runs"]} == {"1/run_a", "2/run_a", "experiments/7/run_c"}
    assert files(destination) == [
        "1/run_b/artifacts/keep.txt",
        "experiments/7/run_keep/artifacts/y.bin",
    ]


def test_refuses_path_like_run_ids(destination: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["gc", "--artifacts-destination", str(destination), "--run-ids", "../1"]) == 1
    assert "not a run id" in capsys.readouterr().err
    assert len(files(destination)) == 6


def test_nothing_to_do_is_a_usage_error(destination: Path) -> None:
    assert run(["gc", "--artifacts-destination", str(destination)]) == 2


def test_stale_multipart_uploads(capsys: pytest.CaptureFixture[str]) -> None:
    bucket = f"gc-{uuid.uuid4().hex}"
    uri = f"memory://{bucket}/dest"
    with ArtifactStore(uri) as store:
        old = store.backend.create_multipart("a/old.bin")
        time.sleep(1.1)
        fresh = store.backend.create_multipart("b/fresh.bin")
    assert (
        run(["gc", "--artifacts-destination", uri, "--incomplete-uploads-older-than", "1s", "--dry-run"]) == 0
    )
    assert f"would abort incomplete upload {old} of a/old.bin" in capsys.readouterr().out
    assert run(["gc", "--artifacts-destination", uri, "--incomplete-uploads-older-than", "1s"]) == 0
    pending = [key for key in memory.pending_uploads() if key.startswith("dest/")]
    assert fresh and "dest/b/fresh.bin" in pending and "dest/a/old.bin" not in pending
    with ArtifactStore(uri) as store:
        store.backend.abort_multipart("b/fresh.bin", fresh)


def test_stale_temporaries_on_a_path_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a writer killed mid-upload leaves (its temporary) is swept once old enough."""
    dest = tmp_path / "dest"
    write_tree(dest, {"models/kept.bin": b"kept", "top.txt": b"top"})
    stale = [dest / "models" / f"{TEMP_PREFIX}{uuid.uuid4().hex}", dest / f"{TEMP_PREFIX}{uuid.uuid4().hex}"]
    fresh = dest / "models" / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    for path, size in ((stale[0], 3000), (stale[1], 100), (fresh, 50)):
        path.write_bytes(b"p" * size)
    an_hour_ago = time.time() - 3600
    for path in stale:
        os.utime(path, (an_hour_ago, an_hour_ago))
    args = ["gc", "--artifacts-destination", str(dest), "--incomplete-uploads-older-than", "30m"]
    assert run([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would abort incomplete upload {stale[0].name} of models (2.9 KiB)" in out
    assert out.endswith("would free 3.0 KiB\n")
    assert all(path.exists() for path in (*stale, fresh))
    assert run([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bytes_freed"] == 3100
    assert sorted(u["path"] for u in report["uploads"]) == ["", "models"]
    assert not any(path.exists() for path in stale)
    assert fresh.exists()  # still being written, as far as anyone can tell
    assert files(dest) == sorted(["models/kept.bin", "top.txt", f"models/{fresh.name}"])


def test_a_store_without_incomplete_uploads_says_so() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(WithoutIncompleteUploads(scheme="flat"), "flat")
    store = ArtifactStore("flat://bucket/x", registry=registry)
    with store, pytest.raises(NotSupported, match="list multipart"):
        gc.stale_uploads(store, 60)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("1.5h", 5400)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


class WithoutIncompleteUploads(MemoryBackend):
    """An object store that cannot list its incomplete uploads."""

    @hookimpl
    def capabilities(self) -> Capabilities:
        return Capabilities(ranged_read=True)
