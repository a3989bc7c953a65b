"""Contract tests of resumable transfers: interrupted uploads and downloads resume where they stopped.

Uploads need multipart and ``list_parts``; downloads need ranged reads. Interruptions
are made two ways: in this process (a progress listener that raises once some bytes
moved: every backend), and by SIGKILL of a child process (backends whose storage
outlives the process, i.e. not ``memory://``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from .. import ArtifactStore, PluginRegistry, Settings, default_registry
from ..paths import TEMP_PREFIX
from ._fixtures import ContractFixtures, random_bytes

__all__ = ["ResumeTests"]

_RANGE = 256 * 1024  # ranged-download chunk of these tests


class Interrupted(Exception):
    """What the interrupting progress listener raises (not an ArtifactError: nothing retries it)."""


class _InterruptAfter:
    """A progress listener that interrupts the transfer once ``after`` bytes moved."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.moved = 0
        self.fired = False

    def begin(self, total_bytes: int | None, total_files: int) -> None: ...

    def update(self, nbytes: int) -> None:
        self.moved += nbytes
        if nbytes > 0 and not self.fired and self.moved >= self.after:
            self.fired = True
            raise Interrupted(f"interrupted after {self.moved} bytes")

    def file_done(self, path: str) -> None: ...
    def end(self) -> None: ...


def journal_entries(state: Path, kind: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The header and complete entries of the one ``kind`` journal in ``state`` (None: there is none)."""
    files = sorted(state.glob(f"{kind}-*.jsonl"))
    assert len(files) <= 1, files
    if not files:
        return None, []
    lines = files[0].read_text().split("\n")
    entries = []
    for line in lines[1:]:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a torn last line
    return json.loads(lines[0]), entries


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from mlartifacts import ArtifactStore, Settings

    args = json.loads(sys.argv[1])

    class Slow:
        def begin(self, total_bytes, total_files): pass
        def update(self, nbytes): time.sleep(args["pause"])
        def file_done(self, path): pass
        def end(self): pass

    with ArtifactStore(args["uri"], settings=Settings(**args["settings"])) as store:
        if args["op"] == "upload":
            store.upload_file(args["local"], args["path"], progress=Slow())
        else:
            store.download_file(args["path"], args["local"], progress=Slow())
    """
)


class ResumeTests(ContractFixtures):
    """Resumable transfers (where the backend lists parts / reads ranges)."""

    #: Set False (saying why) if a child process cannot reach this storage as the tests do.
    resume_in_subprocess = True

    @pytest.fixture
    def state(self, tmp_path: Path) -> Path:
        return tmp_path / "state"

    @pytest.fixture
    def resume_settings(self, settings: Settings, part_size: int, state: Path) -> Settings:
        return settings.replace(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            ranged_download_threshold=2 * _RANGE,
            ranged_download_chunksize=_RANGE,
            max_workers=2,
            state_dir=str(state),
        )

    @pytest.fixture
    def resume_store(
        self, artifact_uri: str, registry: PluginRegistry, resume_settings: Settings
    ) -> Iterator[ArtifactStore]:
        with ArtifactStore(artifact_uri, settings=resume_settings, registry=registry) as store:
            yield store

    @pytest.fixture
    def needs_list_parts(self, store: ArtifactStore) -> None:
        if not store.backend.lists_parts:
            pytest.skip(f"the '{store.plugin}' backend cannot list an upload's parts (no resumable uploads)")

    @pytest.fixture
    def needs_ranges(self, store: ArtifactStore) -> None:
        caps = store.capabilities
        if not caps.ranged_read or caps.single_stream:
            pytest.skip(f"the '{store.plugin}' backend does not download in ranges (no resumable downloads)")

    def _needs_identity(self, store: ArtifactStore, path: str) -> None:
        info = store.stat(path)
        if (info.etag, info.checksum, info.digest, info.modified) == (None, None, None, None):
            pytest.skip(
                f"the '{store.plugin}' backend reports no ETag, checksum, digest or modification time: "
                "a changed object could not be told apart, so its downloads start over"
            )

    @pytest.fixture
    def needs_subprocess(self, artifact_uri: str, registry: PluginRegistry) -> None:
        if registry is not default_registry():
            pytest.skip("the plugin is registered by this test, not installed: a child process lacks it")
        if urlsplit(artifact_uri).scheme == "memory" or not self.resume_in_subprocess:
            pytest.skip("this storage lives in the test process: a killed child's uploads die with it")

    def _no_pending(self, store: ArtifactStore) -> None:
        if store.capabilities.list_multipart_uploads:
            assert list(store.backend.list_multipart_uploads("")) == []

    def _interrupted_upload(self, store: ArtifactStore, src: Path, part_size: int, state: Path) -> int:
        with pytest.raises(Interrupted):
            store.upload_file(str(src), "r/big.bin", progress=_InterruptAfter(2 * part_size))
        assert not store.exists("r/big.bin")
        header, entries = journal_entries(state, "upload")
        assert header is not None
        assert len(entries) >= 2
        return len(entries)

    # -- uploads ---------------------------------------------------------------------------------

    @pytest.mark.usefixtures("needs_list_parts")
    def test_interrupted_upload_sends_only_missing_parts(
        self, resume_store: ArtifactStore, tmp_path: Path, part_size: int, state: Path, hook_calls: list[str]
    ) -> None:
        data = random_bytes(part_size * 5 + 17, seed=16)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        kept = self._interrupted_upload(resume_store, src, part_size, state)
        hook_calls.clear()
        resume_store.upload_file(str(src), "r/big.bin")
        assert hook_calls.count("upload_part") == 6 - kept
        assert hook_calls.count("create_multipart") == 0
        assert resume_store.read_bytes("r/big.bin") == data
        assert journal_entries(state, "upload") == (None, [])
        assert list(state.iterdir()) == []  # no journal, no lock file
        self._no_pending(resume_store)

    @pytest.mark.usefixtures("needs_list_parts")
    def test_changed_source_starts_over(
        self, resume_store: ArtifactStore, tmp_path: Path, part_size: int, state: Path, hook_calls: list[str]
    ) -> None:
        src = tmp_path / "big.bin"
        src.write_bytes(random_bytes(part_size * 4, seed=1))
        self._interrupted_upload(resume_store, src, part_size, state)
        old_id = journal_entries(state, "upload")[0]["upload_id"]  # type: ignore[index]
        # Same size, same modification time: only the parts' checksums can tell.
        st = src.stat()
        changed = random_bytes(part_size * 4, seed=2)
        src.write_bytes(changed)
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
        hook_calls.clear()
        resume_store.upload_file(str(src), "r/big.bin")
        assert hook_calls.count("abort_multipart") == 1
        assert hook_calls.count("create_multipart") == 1
        assert hook_calls.count("upload_part") == 4
        assert resume_store.read_bytes("r/big.bin") == changed
        self._no_pending(resume_store)
        if resume_store.backend.lists_parts and resume_store.multipart_limits:
            try:  # the old upload is gone (or, where uploads keep no state, holds nothing)
                assert resume_store.backend.list_parts("r/big.bin", old_id) == []
            except FileNotFoundError:
                pass

    @pytest.mark.usefixtures("needs_list_parts")
    def test_journal_of_a_vanished_upload_starts_over(
        self, resume_store: ArtifactStore, tmp_path: Path, part_size: int, state: Path
    ) -> None:
        data = random_bytes(part_size * 4, seed=3)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        self._interrupted_upload(resume_store, src, part_size, state)
        header, _ = journal_entries(state, "upload")
        assert header is not None
        resume_store.backend.abort_multipart("r/big.bin", header["upload_id"])  # e.g. a lifecycle rule
        resume_store.upload_file(str(src), "r/big.bin")
        assert resume_store.read_bytes("r/big.bin") == data
        self._no_pending(resume_store)

    @pytest.mark.usefixtures("needs_list_parts")
    def test_resuming_off_aborts_as_before(
        self,
        artifact_uri: str,
        registry: PluginRegistry,
        resume_settings: Settings,
        tmp_path: Path,
        part_size: int,
        state: Path,
        hook_calls: list[str],
    ) -> None:
        src = tmp_path / "big.bin"
        src.write_bytes(random_bytes(part_size * 4, seed=4))
        off = resume_settings.replace(resume=False)
        with ArtifactStore(artifact_uri, settings=off, registry=registry) as store:
            with pytest.raises(Interrupted):
                store.upload_file(str(src), "r/big.bin", progress=_InterruptAfter(part_size))
            assert hook_calls.count("abort_multipart") == 1
            self._no_pending(store)
        assert not state.exists()

    @pytest.mark.usefixtures("needs_list_parts", "needs_subprocess")
    def test_killed_upload_resumes(
        self,
        resume_store: ArtifactStore,
        artifact_uri: str,
        resume_settings: Settings,
        tmp_path: Path,
        part_size: int,
        state: Path,
        hook_calls: list[str],
    ) -> None:
        data = random_bytes(part_size * 6, seed=5)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        journaled = self._kill_child(
            tmp_path, "upload", artifact_uri, resume_settings.replace(max_workers=1), str(src), 0.4, state
        )
        assert not resume_store.exists("r/big.bin")
        hook_calls.clear()
        resume_store.upload_file(str(src), "r/big.bin")
        assert hook_calls.count("upload_part") == 6 - journaled
        assert resume_store.read_bytes("r/big.bin") == data
        self._no_pending(resume_store)
        assert list(state.iterdir()) == []

    # -- downloads -------------------------------------------------------------------------------

    @pytest.mark.usefixtures("needs_ranges")
    def test_interrupted_download_fetches_only_missing_ranges(
        self, resume_store: ArtifactStore, tmp_path: Path, state: Path, hook_calls: list[str]
    ) -> None:
        data = random_bytes(_RANGE * 8 + 5, seed=6)
        resume_store.write_bytes("d/blob.bin", data)
        self._needs_identity(resume_store, "d/blob.bin")
        target = tmp_path / "out" / "blob.bin"
        with pytest.raises(Interrupted):
            # Two workers: at most two ranges are partly written when it stops.
            resume_store.download_file("d/blob.bin", str(target), progress=_InterruptAfter(5 * _RANGE))
        assert not target.exists()  # nothing partial under the destination's name
        assert [p.name for p in target.parent.iterdir()] == [f"{TEMP_PREFIX}blob.bin.download"]
        _, entries = journal_entries(state, "download")
        assert len(entries) >= 3
        hook_calls.clear()
        resume_store.download_file("d/blob.bin", str(target))
        assert hook_calls.count("read") == 9 - len(entries)
        assert target.read_bytes() == data
        assert [p.name for p in target.parent.iterdir()] == ["blob.bin"]
        assert list(state.iterdir()) == []

    @pytest.mark.usefixtures("needs_ranges")
    def test_download_of_a_changed_object_starts_over(
        self, resume_store: ArtifactStore, tmp_path: Path, hook_calls: list[str]
    ) -> None:
        resume_store.write_bytes("d/blob.bin", random_bytes(_RANGE * 6, seed=7))
        target = tmp_path / "out" / "blob.bin"
        with pytest.raises(Interrupted):
            resume_store.download_file("d/blob.bin", str(target), progress=_InterruptAfter(2 * _RANGE))
        time.sleep(1.1)  # storages with 1-second modification times still see a change
        changed = random_bytes(_RANGE * 6, seed=8)
        resume_store.write_bytes("d/blob.bin", changed)
        hook_calls.clear()
        resume_store.download_file("d/blob.bin", str(target))
        assert hook_calls.count("read") == 6
        assert target.read_bytes() == changed
        assert [p.name for p in target.parent.iterdir()] == ["blob.bin"]

    @pytest.mark.usefixtures("needs_ranges", "needs_subprocess")
    def test_killed_download_resumes(
        self,
        resume_store: ArtifactStore,
        artifact_uri: str,
        resume_settings: Settings,
        tmp_path: Path,
        state: Path,
        hook_calls: list[str],
    ) -> None:
        data = random_bytes(_RANGE * 10, seed=9)
        resume_store.write_bytes("d/blob.bin", data)
        self._needs_identity(resume_store, "d/blob.bin")
        target = tmp_path / "out" / "blob.bin"
        journaled = self._kill_child(
            tmp_path,
            "download",
            artifact_uri,
            resume_settings.replace(max_workers=1),
            str(target),
            0.1,
            state,
        )
        assert not target.exists()
        hook_calls.clear()
        resume_store.download_file("d/blob.bin", str(target))
        assert hook_calls.count("read") == 10 - journaled
        assert target.read_bytes() == data
        assert [p.name for p in target.parent.iterdir()] == ["blob.bin"]

    def _kill_child(
        self, tmp_path: Path, op: str, uri: str, settings: Settings, local: str, pause: float, state: Path
    ) -> int:
        """Run one transfer in a child process, SIGKILL it once 2 entries are journaled; the count."""
        fields = {"multipart_threshold", "multipart_chunksize", "ranged_download_threshold"}
        fields |= {
            "ranged_download_chunksize",
            "max_workers",
            "state_dir",
            "retry_backoff",
            "retry_backoff_max",
        }
        args = {
            "op": op,
            "uri": uri,
            "path": "r/big.bin" if op == "upload" else "d/blob.bin",
            "local": local,
            "pause": pause,
            "settings": {name: getattr(settings, name) for name in sorted(fields)},
        }
        log = tmp_path / f"child-{uuid.uuid4().hex[:8]}.log"
        with open(log, "wb") as out:
            child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while len(journal_entries(state, op)[1]) < 2:
                assert child.poll() is None, f"the child ended first: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "the child journaled nothing in 60 s"
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
        entries = journal_entries(state, op)[1]
        assert len(entries) >= 2
        return len(entries)
