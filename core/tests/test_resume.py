"""Resumable transfers against the in-memory backend: journals, what resumes and what starts over.

The contract suite (mlartifacts.testing.contract.ResumeTests) covers interrupted and
killed transfers on every backend; these are the engine's own rules.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, MultipartLimits, PluginRegistry, Settings, hookimpl
from mlartifacts.cli import run
from mlartifacts.config import default_state_dir
from mlartifacts.errors import IntegrityError, PermissionDenied, TransientError
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import random_bytes
from mlartifacts.transfer._journal import open_journal
from mlartifacts.transfer._resume import partial_name

KiB = 1024
LIMITS = MultipartLimits(min_part_size=4 * KiB, max_part_size=1 << 20, max_parts=1000)


class FailingPart(MemoryBackend):
    """Part ``fail_at`` (counting calls) fails with ``error``, once."""

    def __init__(self, fail_at: int, error: Exception) -> None:
        super().__init__(LIMITS, chunk_size=1000)
        self.fail_at = fail_at
        self.error = error
        self.parts_sent = 0

    @hookimpl
    def upload_part(self, root, path, upload_id, part_number, data):  # type: ignore[no-untyped-def]
        self.parts_sent += 1
        if self.parts_sent == self.fail_at:
            raise self.error
        return super().upload_part(root, path, upload_id, part_number, data)


def settings(state: Path, **changes: object) -> Settings:
    base = Settings(
        retry_backoff=0.001,
        retry_backoff_max=0.01,
        multipart_threshold=16 * KiB,
        multipart_chunksize=4 * KiB,
        ranged_download_threshold=16 * KiB,
        ranged_download_chunksize=4 * KiB,
        max_workers=1,  # parts in order: which ones were sent is predictable
        max_retries=0,
        state_dir=str(state),
    )
    return base.replace(**changes)


def make_store(backend: MemoryBackend, s: Settings) -> ArtifactStore:
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    return ArtifactStore("memory://b/root", settings=s, registry=registry)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(random_bytes(10 * 4 * KiB + 123, seed=1))  # 11 parts
    return path


def journal_of(state: Path, kind: str = "upload") -> list[str]:
    return [p.read_text() for p in state.glob(f"{kind}-*.jsonl")]


def parts_journaled(state: Path) -> int:
    [text] = journal_of(state)
    return len(text.splitlines()) - 1  # after the header


def test_a_part_failing_past_its_retries_keeps_the_others(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(5, TransientError("503 Slow Down"))
    with make_store(backend, settings(state)) as store:
        with pytest.raises(TransientError, match="503 Slow Down"):
            store.upload_file(str(src), "big.bin")
        assert backend.pending_uploads() == ["root/big.bin"]  # not aborted on the way out
        assert backend.count("abort_multipart") == 0
        kept = parts_journaled(state)
        assert kept >= 4  # parts 1-4 (and 6, if the worker took it before the failure was seen)
        before = backend.parts_sent
        store.upload_file(str(src), "big.bin")
        assert backend.parts_sent - before == 11 - kept  # those stayed stored
        assert store.read_bytes("big.bin") == src.read_bytes()
    assert backend.pending_uploads() == []
    assert list(state.iterdir()) == []


def test_a_refused_part_aborts_and_forgets(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(3, PermissionDenied("AccessDenied"))
    with make_store(backend, settings(state)) as store, pytest.raises(PermissionDenied):
        store.upload_file(str(src), "big.bin")
    assert backend.pending_uploads() == []
    assert list(state.iterdir()) == []


def test_a_grown_file_starts_over_and_aborts_the_old_upload(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(5, TransientError("reset"))
    with make_store(backend, settings(state)) as store:
        with pytest.raises(TransientError):
            store.upload_file(str(src), "big.bin")
        with open(src, "ab") as f:
            f.write(b"more")
        before = backend.parts_sent
        store.upload_file(str(src), "big.bin")
        assert backend.parts_sent - before == 11
        assert backend.count("abort_multipart") == 1
        assert store.read_bytes("big.bin") == src.read_bytes()
    assert backend.pending_uploads() == []


def test_a_journal_past_its_age_starts_over(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(5, TransientError("reset"))
    with make_store(backend, settings(state)) as store, pytest.raises(TransientError):
        store.upload_file(str(src), "big.bin")
    with make_store(backend, settings(state, resume_max_age=0.0)) as store:
        before = backend.parts_sent
        store.upload_file(str(src), "big.bin")
        assert backend.parts_sent - before == 11
    assert backend.count("abort_multipart") == 1
    assert backend.pending_uploads() == []


def test_the_backends_retention_bounds_the_age(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(5, TransientError("reset"))
    with make_store(backend, settings(state)) as store, pytest.raises(TransientError):
        store.upload_file(str(src), "big.bin")
    backend.limits = MultipartLimits(4 * KiB, 1 << 20, 1000, retention=0.0)  # parts kept 0 s
    time.sleep(0.01)
    with make_store(backend, settings(state)) as store:
        before = backend.parts_sent
        store.upload_file(str(src), "big.bin")
        assert backend.parts_sent - before == 11


def test_a_torn_last_line_is_not_a_confirmed_part(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(5, TransientError("reset"))
    with make_store(backend, settings(state)) as store, pytest.raises(TransientError):
        store.upload_file(str(src), "big.bin")
    [journal] = state.glob("upload-*.jsonl")
    lines = journal.read_text().splitlines()
    kept = len(lines) - 1
    assert kept >= 4  # parts 1-4 at least
    header = json.loads(lines[0])
    assert (header["size"], header["part_size"]) == (src.stat().st_size, 4 * KiB)
    journal.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])  # killed mid-write
    with make_store(backend, settings(state)) as store:
        before = backend.parts_sent
        store.upload_file(str(src), "big.bin")
        assert backend.parts_sent - before == 11 - (kept - 1)
        assert store.read_bytes("big.bin") == src.read_bytes()


def test_a_transfer_running_elsewhere_is_not_resumed_nor_disturbed(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    s = settings(state)
    backend = FailingPart(5, TransientError("reset"))
    with make_store(backend, s) as store, pytest.raises(TransientError):
        store.upload_file(str(src), "big.bin")
    [journal_file] = state.glob("upload-*.jsonl")
    kept = journal_file.read_text()
    # Another process holds this transfer's lock (flock: a second open file conflicts too).
    with make_store(backend, s) as store:
        key = ["upload", os.path.realpath(src), store.backend.uri, "big.bin"]
        holder = open_journal(s, "upload", key)
        assert holder is not None
        try:
            assert open_journal(s, "upload", key) is None
            before = backend.parts_sent
            store.upload_file(str(src), "big.bin")  # without a journal: every part
            assert backend.parts_sent - before == 11
            assert journal_file.read_text() == kept  # the other's journal untouched
        finally:
            holder.close()


def test_resuming_off_writes_no_journal(tmp_path: Path, src: Path) -> None:
    state = tmp_path / "state"
    backend = FailingPart(5, TransientError("reset"))
    with make_store(backend, settings(state, resume=False)) as store, pytest.raises(TransientError):
        store.upload_file(str(src), "big.bin")
    assert backend.pending_uploads() == []
    assert not state.exists()


def test_interrupted_download_then_gc_forgets_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    backend = MemoryBackend(LIMITS, chunk_size=1000)
    data = random_bytes(40 * KiB, seed=2)
    target = tmp_path / "out" / "r.bin"
    with make_store(backend, settings(state)) as store:
        store.write_bytes("r.bin", data)
        backend.inject("read", TransientError("reset"), times=1, path=None)
        backend.calls.clear()
        # The first range fails past its (zero) retries: the file is kept, hidden.
        with pytest.raises(TransientError):
            store.download_file("r.bin", str(target))
    partial = target.parent / f"{TEMP_PREFIX}r.bin.download"
    assert partial.exists()
    assert not target.exists()
    assert len(journal_of(state, "download")) == 1
    monkeypatch.setenv("MLARTIFACTS_STATE_DIR", str(state))
    assert run(["gc", "--transfer-journals-older-than", "1d"]) == 0  # too young: kept
    assert partial.exists()
    assert run(["gc", "--transfer-journals-older-than", "0", "--json"]) == 0
    capsys.readouterr()
    assert not partial.exists()
    assert list(state.iterdir()) == []


def test_a_download_that_does_not_verify_is_not_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    backend = MemoryBackend(LIMITS, chunk_size=1000)
    target = tmp_path / "r.bin"
    with make_store(backend, settings(state, max_retries=0)) as store:
        store.write_bytes("r.bin", random_bytes(40 * KiB, seed=3))
        backend.inject("read", None, corrupt=True, times=1)
        with pytest.raises(IntegrityError, match="returned 4095 of 4096 bytes"):
            store.download_file("r.bin", str(target))
    assert [p.name for p in tmp_path.iterdir() if p.name != "state"] == []
    assert list(state.iterdir()) == []


def test_settings_from_the_environment(tmp_path: Path) -> None:
    env = {
        "MLARTIFACTS_RESUME": "off",
        "MLARTIFACTS_STATE_DIR": str(tmp_path),
        "MLARTIFACTS_RESUME_MAX_AGE": "60",
    }
    s = Settings.from_env(env)
    assert (s.resume, s.state_dir, s.resume_max_age) == (False, str(tmp_path), 60.0)
    assert Settings.from_env({}).resume is True
    assert default_state_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == "/x/cache/mlartifacts/transfers"
    assert default_state_dir({"MLARTIFACTS_STATE_DIR": "/s"}) == "/s"
    # A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
    assert default_state_dir({"XDG_CACHE_HOME": "rel"}).endswith(
        os.path.join(".cache", "mlartifacts", "transfers")
    )


def test_partial_names_stay_within_the_filesystems_limit(tmp_path: Path) -> None:
    assert os.path.basename(partial_name(str(tmp_path / "m.bin"))) == f"{TEMP_PREFIX}m.bin.download"
    long = partial_name(str(tmp_path / ("x" * 250)))
    assert len(os.path.basename(long)) <= 255
    assert os.path.basename(long).startswith(TEMP_PREFIX)
    assert partial_name(str(tmp_path / ("x" * 250))) == long  # deterministic: a re-run finds it
