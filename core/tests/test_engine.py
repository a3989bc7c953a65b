"""The transfer engine against the in-memory backend, with injected failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, MultipartLimits, PluginRegistry, Settings, hookimpl
from mlartifacts.errors import (
    BackendError,
    IntegrityError,
    NotFound,
    NotSupported,
    OperationTimeout,
    PermissionDenied,
    TransientError,
)
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree

KiB = 1024
LIMITS = MultipartLimits(min_part_size=4 * KiB, max_part_size=1 << 20, max_parts=1000)
FAST = Settings(
    retry_backoff=0.001,
    retry_backoff_max=0.01,
    multipart_threshold=16 * KiB,
    multipart_chunksize=4 * KiB,
    ranged_download_threshold=16 * KiB,
    ranged_download_chunksize=4 * KiB,
    max_workers=4,
)


class Recording:
    """Collects progress events (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total: int | None = None
        self.files = 0
        self.moved = 0
        self.done: list[str] = []
        self.ended = False

    def begin(self, total_bytes: int | None, total_files: int) -> None:
        self.total, self.files = total_bytes, total_files

    def update(self, nbytes: int) -> None:
        with self.lock:
            self.moved += nbytes

    def file_done(self, path: str) -> None:
        with self.lock:
            self.done.append(path)

    def end(self) -> None:
        self.ended = True


class Counting(MemoryBackend):
    """A memory backend that measures how many calls of each hook run at once."""

    def __init__(self, delay: float = 0.02, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.delay = delay
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def _enter(self, hook: str, key: str):  # type: ignore[no-untyped-def]
        with self._count_lock:
            self.active[hook] = self.active.get(hook, 0) + 1
            self.peak[hook] = max(self.peak.get(hook, 0), self.active[hook])
        try:
            time.sleep(self.delay)
            return super()._enter(hook, key)
        finally:
            with self._count_lock:
                self.active[hook] -= 1


def make_store(
    backend: MemoryBackend, settings: Settings = FAST, uri: str = "memory://b/root"
) -> ArtifactStore:
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    return ArtifactStore(uri, settings=settings, registry=registry)


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(LIMITS, chunk_size=1000)


@pytest.fixture
def store(backend: MemoryBackend) -> Iterator[ArtifactStore]:
    with make_store(backend) as store:
        yield store


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(random_bytes(10 * 4 * KiB + 123))  # 11 parts
    return path


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


# -- multipart upload ------------------------------------------------------------------------


def test_transient_part_failures_are_retried(
    store: ArtifactStore, backend: MemoryBackend, big_file: Path
) -> None:
    backend.inject("upload_part", TransientError("503 SlowDown"), times=3)
    progress = Recording()
    store.upload_file(str(big_file), "big.bin", progress)
    assert backend.objects("b")["root/big.bin"] == big_file.read_bytes()
    assert backend.count("upload_part") == 11 + 3
    assert progress.moved == progress.total == big_file.stat().st_size  # retried bytes not counted twice
    assert backend.pending_uploads() == []


def test_permanent_part_failure_aborts(store: ArtifactStore, backend: MemoryBackend, big_file: Path) -> None:
    backend.inject("upload_part", PermissionDenied("AccessDenied on part"), times=1)
    with pytest.raises(PermissionDenied, match="AccessDenied"):
        store.upload_file(str(big_file), "big.bin")
    assert backend.count("abort_multipart") == 1
    assert backend.pending_uploads() == []
    assert backend.objects("b") == {}


def test_retries_give_up_with_a_count(backend: MemoryBackend, big_file: Path) -> None:
    backend.inject("upload_part", TransientError("connection reset"), times=100)
    with (
        make_store(backend, FAST.replace(max_retries=2, resume=False)) as store,
        pytest.raises(TransientError, match=r"gave up after 3 attempts"),
    ):
        store.upload_file(str(big_file), "big.bin")
    assert backend.pending_uploads() == []  # resuming off: aborted (test_resume.py: kept)
    assert backend.objects("b") == {}


def test_failed_complete_aborts(backend: MemoryBackend, big_file: Path) -> None:
    backend.inject("complete_multipart", BackendError("InternalError"), times=1)
    with make_store(backend, FAST.replace(resume=False)) as store, pytest.raises(BackendError):
        store.upload_file(str(big_file), "big.bin")
    assert backend.pending_uploads() == []


def test_part_size_grows_to_fit_max_parts(tmp_path: Path) -> None:
    backend = MemoryBackend(MultipartLimits(1 * KiB, 1 << 20, max_parts=5))
    data = random_bytes(40 * KiB)
    (tmp_path / "f").write_bytes(data)
    with make_store(backend, FAST.replace(multipart_threshold=2 * KiB, multipart_chunksize=1 * KiB)) as store:
        store.upload_file(str(tmp_path / "f"), "f")
    assert backend.count("upload_part") == 5
    assert backend.objects("b")["root/f"] == data


def test_a_failed_download_to_the_default_directory_leaves_no_directory(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without dst_path the store makes a temporary directory; a failure removes it again."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(NotFound):
        store.download_artifacts("missing/model.bin")
    assert list(tmp_path.iterdir()) == []
    store.write_bytes("there.bin", b"x")
    local = Path(store.download_artifacts("there.bin"))
    assert local.read_bytes() == b"x" and local.parent.parent == tmp_path


def test_small_files_skip_multipart(store: ArtifactStore, backend: MemoryBackend, tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"x" * (8 * KiB))  # below the 16 KiB threshold
    store.upload_file(str(tmp_path / "small"), "small")
    assert backend.count("create_multipart") == 0
    assert backend.count("upload") == 1


def test_parts_in_flight_are_bounded(tmp_path: Path, big_file: Path) -> None:
    backend = Counting(limits=LIMITS)
    with make_store(backend, FAST.replace(max_workers=3)) as store:
        store.upload_file(str(big_file), "big.bin")
    assert backend.peak["upload_part"] == 3


def test_part_memory_bounds_parts_in_flight(big_file: Path) -> None:
    """Parts are held whole while they are sent: MLARTIFACTS_PART_MEMORY caps how many at once."""
    backend = Counting(limits=LIMITS)
    with make_store(backend, FAST.replace(max_workers=8, part_memory=2 * 4 * KiB)) as store:
        store.upload_file(str(big_file), "big.bin")
    assert backend.peak["upload_part"] == 2
    assert backend.objects("b")["root/big.bin"] == big_file.read_bytes()


# -- trees -----------------------------------------------------------------------------------


def test_tree_upload_is_parallel_and_bounded(tmp_path: Path) -> None:
    files = {f"d{i % 3}/f{i}.txt": f"file {i}".encode() for i in range(20)}
    write_tree(tmp_path / "src", files)
    backend = Counting(limits=LIMITS)
    progress = Recording()
    with make_store(backend, FAST.replace(max_workers=4)) as store:
        store.log_artifacts(str(tmp_path / "src"), "run")
        store.progress = progress
        store.download_artifacts("run", str(tmp_path / "dst"))
    assert backend.peak["upload"] == 4
    assert backend.peak["download"] == 4
    assert progress.files == 20 and len(progress.done) == 20 and progress.ended
    assert progress.moved == progress.total == sum(len(v) for v in files.values())


def test_tree_failure_stops_and_reports_the_cause(tmp_path: Path) -> None:
    files = {f"f{i:02}.txt": b"x" for i in range(40)}
    write_tree(tmp_path / "src", files)
    backend = Counting(limits=LIMITS, delay=0.005)
    backend.inject("upload", PermissionDenied("AccessDenied: f05"), path="root/f05.txt")
    with (
        make_store(backend, FAST.replace(max_workers=2)) as store,
        pytest.raises(PermissionDenied, match="f05"),
    ):
        store.log_artifacts(str(tmp_path / "src"))
    assert backend.count("upload") < 40  # the rest was not attempted


# -- downloads ---------------------------------------------------------------------------------


def test_corrupt_download_is_retried(store: ArtifactStore, backend: MemoryBackend, tmp_path: Path) -> None:
    store.write_bytes("m.bin", random_bytes(5000))
    backend.inject("download", None, corrupt=True, times=1)
    out = store.download_file("m.bin", str(tmp_path / "m.bin"))
    assert Path(out).read_bytes() == random_bytes(5000)
    assert backend.count("download") == 2


def test_persistent_corruption_leaves_no_file(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path
) -> None:
    store.write_bytes("m.bin", random_bytes(5000))
    backend.inject("download", None, corrupt=True, times=100)
    with pytest.raises(IntegrityError, match="SHA-256"):
        store.download_file("m.bin", str(tmp_path / "m.bin"))
    assert list(tmp_path.iterdir()) == []


def test_ranged_download_retries_a_truncated_range(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path
) -> None:
    data = random_bytes(40 * KiB + 5)
    store.write_bytes("r.bin", data)
    backend.inject("read", None, corrupt=True, times=2)
    progress = Recording()
    out = store.download_file("r.bin", str(tmp_path / "r.bin"), progress)
    assert Path(out).read_bytes() == data
    assert backend.count("read") == 11 + 2
    assert progress.moved == len(data)


def test_failed_ranged_download_leaves_no_file(
    store: ArtifactStore, backend: MemoryBackend, tmp_path: Path
) -> None:
    store.write_bytes("r.bin", random_bytes(40 * KiB))
    backend.inject("read", PermissionDenied("AccessDenied"), times=1)
    with pytest.raises(PermissionDenied):
        store.download_file("r.bin", str(tmp_path / "r.bin"))
    assert list(tmp_path.iterdir()) == []


def test_missing_object(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"memory://b/root/nope"):
        store.download_file("nope", str(tmp_path / "nope"))


# -- timeouts ----------------------------------------------------------------------------------


def test_stalled_backend_times_out(backend: MemoryBackend, tmp_path: Path) -> None:
    with make_store(backend) as setup:
        setup.write_bytes("slow.bin", b"data")
    backend.inject("download", None, delay=1.5)
    started = time.monotonic()
    with (
        make_store(backend, FAST.replace(timeout=0.3)) as store,
        pytest.raises(OperationTimeout, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"),
    ):
        store.download_file("slow.bin", str(tmp_path / "slow.bin"))
        # the store's exit waits for the stalled worker, which then cleans up
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_timeout_stops_retrying(backend: MemoryBackend, big_file: Path) -> None:
    backend.inject("upload_part", TransientError("503"), times=10_000)
    slow_retries = FAST.replace(
        timeout=0.5, retry_backoff=0.2, retry_backoff_max=0.2, max_retries=1000, resume=False
    )
    with make_store(backend, slow_retries) as store, pytest.raises(OperationTimeout):
        store.upload_file(str(big_file), "big.bin")
    assert backend.pending_uploads() == []


# -- streams -----------------------------------------------------------------------------------


def test_stream_multipart_bounded(tmp_path: Path) -> None:
    backend = Counting(limits=LIMITS, delay=0.01)
    data = random_bytes(30 * 4 * KiB + 7)
    pulled = []

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 1000):
            pulled.append(i)
            yield data[i : i + 1000]

    with make_store(backend, FAST.replace(max_workers=2)) as store:
        store.write("s.bin", chunks())
        assert store.read_bytes("s.bin") == data
    assert backend.peak["upload_part"] <= 2
    assert backend.count("upload_part") == 31


@pytest.mark.parametrize(("workers", "in_flight", "bound"), [(8, 3, 3), (2, 4, 2)])
def test_stream_parts_in_flight_bounds_one_stream(workers: int, in_flight: int, bound: int) -> None:
    """A stream holds at most min(stream_parts_in_flight, max_workers) parts, however many workers."""
    backend = Counting(limits=LIMITS, delay=0.02)
    data = random_bytes(40 * 4 * KiB)
    settings = FAST.replace(max_workers=workers, stream_parts_in_flight=in_flight)
    with make_store(backend, settings) as store:
        store.write("s.bin", (data[i : i + 4096] for i in range(0, len(data), 4096)))
        assert store.read_bytes("s.bin") == data
    assert backend.peak["upload_part"] == bound


def test_stream_part_failure_aborts(store: ArtifactStore, backend: MemoryBackend) -> None:
    backend.inject("upload_part", PermissionDenied("denied"), times=1)
    with pytest.raises(PermissionDenied):
        store.write("s.bin", iter([random_bytes(50 * KiB)]))
    assert backend.pending_uploads() == []
    assert backend.objects("b") == {}


class FlakyReads(MemoryBackend):
    """Breaks the first read stream after its first chunk, as a dropped connection would."""

    broken = False

    @hookimpl
    def read(self, root, path, offset, length):  # type: ignore[no-untyped-def]
        stream = super().read(root, path, offset, length)
        if self.broken:
            yield from stream
            return
        self.broken = True
        yield next(stream)
        raise TransientError("connection reset by peer")


def test_read_stream_resumes_where_it_broke() -> None:
    backend = FlakyReads(LIMITS, chunk_size=1000)
    data = random_bytes(10_000)
    with make_store(backend) as store:
        store.write_bytes("f", data)
        assert b"".join(store.read("f", 500)) == data[500:]
    assert backend.count("read") == 2


def test_copy_between_stores_streams(backend: MemoryBackend, tmp_path: Path) -> None:
    other = MemoryBackend(LIMITS)
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    registry.register(MemoryBackend(None, scheme="other"), "other")
    data = random_bytes(50 * KiB)
    with (
        ArtifactStore("memory://b/src", registry=registry, settings=FAST) as src,
        ArtifactStore("other://c/dst", registry=registry, settings=FAST) as dst,
    ):
        src.write_bytes("x/y.bin", data)
        src.copy_to("x/y.bin", dst, "copied.bin")
        src.copy_tree_to("x", dst, "tree")
        assert dst.read_bytes("copied.bin") == data
        assert dst.read_bytes("tree/y.bin") == data
    assert other.count("copy") == 0


def test_copy_inside_one_backend_is_server_side(store: ArtifactStore, backend: MemoryBackend) -> None:
    store.write_bytes("a.bin", b"abc")
    store.copy_to("a.bin", store, "b.bin")
    assert backend.count("copy") == 1
    assert store.read_bytes("b.bin") == b"abc"


# -- batches of small files ------------------------------------------------------------------

BATCHED = FAST.replace(batch_file_size=2 * KiB, batch_files=10, batches_in_flight=2)


def small_tree(root: Path, count: int = 25) -> dict[str, bytes]:
    files = {f"d{i % 3}/f{i:02}.bin": random_bytes(100 + i, seed=i) for i in range(count)}
    files["large.bin"] = random_bytes(5 * KiB, seed=99)  # above batch_file_size
    write_tree(root, files)
    return files


def test_small_files_go_in_even_batches(tmp_path: Path) -> None:
    backend = Counting(delay=0.01, limits=None, batch=True)
    files = small_tree(tmp_path / "src")
    progress = Recording()
    with make_store(backend, BATCHED) as store:
        store.upload_tree(str(tmp_path / "src"), "t", progress=progress)
        assert backend.count("upload_batch") == 4  # 25 files, 2 slots, at most 10: 4 batches of 7 or less
        assert backend.count("upload") == 1
        assert backend.peak["upload_batch"] == 2
        assert (progress.moved, progress.total) == (sum(map(len, files.values())),) * 2
        assert sorted(progress.done) == sorted(f"t/{rel}" for rel in files)
        download = Recording()
        out = tmp_path / "dst"
        store.download_tree("t", str(out), progress=download)
    assert read_tree(out) == files
    assert backend.count("download_batch") == 4
    assert download.moved == progress.moved
    assert sorted(download.done) == sorted(progress.done)


def test_failed_batch_is_sent_again_whole(tmp_path: Path) -> None:
    backend = MemoryBackend(None, batch=True)
    files = small_tree(tmp_path / "src", count=5)
    backend.inject("upload_batch", TransientError, times=2)
    progress = Recording()
    with make_store(backend, BATCHED) as store:
        store.upload_tree(str(tmp_path / "src"), "", progress=progress)
    assert backend.objects("b") == {f"root/{rel}": data for rel, data in files.items()}
    assert progress.moved == sum(map(len, files.values()))  # the failed attempts' bytes were taken back


def test_short_file_in_a_batch_is_fetched_again(tmp_path: Path) -> None:
    backend = MemoryBackend(None, batch=True)
    files = small_tree(tmp_path / "src", count=9)
    with make_store(backend, BATCHED.replace(batches_in_flight=1)) as store:
        store.upload_tree(str(tmp_path / "src"), "")
        backend.inject("download_batch", None, corrupt=True)  # the 5th file comes short
        progress = Recording()
        store.download_tree("", str(tmp_path / "dst"), progress=progress)
    asked = [key for hook, key in backend.calls if hook == "download_batch"]
    assert len(asked) == 2  # the batch, then the files it had not delivered whole
    assert sorted(progress.done) == sorted(files)
    assert len(progress.done) == len(set(progress.done))
    assert read_tree(tmp_path / "dst") == files
    assert leftovers(tmp_path / "dst") == []


def test_persistent_short_file_leaves_only_whole_files(tmp_path: Path) -> None:
    backend = MemoryBackend(None, batch=True)
    small_tree(tmp_path / "src", count=9)
    with make_store(backend, BATCHED.replace(batches_in_flight=1, max_retries=1)) as store:
        store.upload_tree(str(tmp_path / "src"), "")
        backend.inject("download_batch", None, corrupt=True, times=5)
        with pytest.raises(IntegrityError, match="expected"):
            store.download_tree("", str(tmp_path / "dst"))
    assert leftovers(tmp_path / "dst") == []
    for path in (tmp_path / "dst").rglob("*.bin"):  # whatever is there is whole
        assert path.read_bytes() == (tmp_path / "src" / path.relative_to(tmp_path / "dst")).read_bytes()


def test_local_file_vanishing_from_a_batch_is_not_found(tmp_path: Path) -> None:
    backend = MemoryBackend(None, batch=True)
    small_tree(tmp_path / "src", count=6)

    class Vanish(Recording):
        def begin(self, total_bytes: int | None, total_files: int) -> None:
            (tmp_path / "src" / "d0" / "f03.bin").unlink()

    with make_store(backend, BATCHED) as store, pytest.raises(NotFound, match="vanished"):
        store.upload_tree(str(tmp_path / "src"), "", progress=Vanish())
    assert backend.count("upload_batch") <= 2  # not retried as if transient


def test_multipart_refused_midway_falls_back_without_double_counting(
    backend: MemoryBackend, big_file: Path
) -> None:
    """Some parts went out before one was refused: the whole-file upload must not count them again."""
    from mlartifacts.errors import NotSupported

    backend.inject("upload_part", NotSupported, delay=0.3)  # the others finish first
    progress = Recording()
    with make_store(backend) as store:
        store.upload_file(str(big_file), "big.bin", progress=progress)
        assert store.read_bytes("big.bin") == big_file.read_bytes()
    assert backend.count("upload") == 1
    assert backend.pending_uploads() == []
    assert progress.moved == big_file.stat().st_size


def test_range_failing_past_its_retries_fails_the_download(backend: MemoryBackend, tmp_path: Path) -> None:
    """A range that exhausts its own retries fails the file (after the file's own retries).

    It once cancelled the whole batch instead, and the file's next attempt then ended
    as "cancelled", which the batch took for success: no file and no error.
    """
    with make_store(backend, FAST.replace(max_retries=1)) as store:
        store.write_bytes("r.bin", random_bytes(40 * KiB))
        backend.inject("read", TransientError, times=1000)
        with pytest.raises(TransientError, match="gave up"):
            store.download_file("r.bin", str(tmp_path / "r.bin"))
        # Only the hidden partial file a re-run resumes from (test_resume.py).
        assert [p.name for p in tmp_path.iterdir()] == [f"{TEMP_PREFIX}r.bin.download"]


def test_read_of_a_missing_object_fails_at_the_call(store: ArtifactStore) -> None:
    # Not at the caller's first next(): a server can answer 404 before it starts a 200.
    with pytest.raises(NotFound):
        store.read("missing.bin")
    store.write_bytes("empty.bin", b"")
    assert list(store.read("empty.bin")) == []


def test_server_side_copy_refused_between_two_roots_streams_instead(backend: MemoryBackend) -> None:
    backend.inject("copy", NotSupported("copy between these two buckets"), times=1)
    with make_store(backend) as store:
        store.write_bytes("a.bin", b"abc" * 1000)
        store.copy_to("a.bin", store, "b.bin")
        assert store.read_bytes("b.bin") == b"abc" * 1000


class CallerError(Exception):
    """The caller's own stream breaking (a file it reads, a socket it proxies)."""


@pytest.mark.parametrize("size_hint", [None, 10 * KiB], ids=["unknown-size", "below-threshold"])
def test_a_broken_caller_stream_raises_the_caller_s_error(
    backend: MemoryBackend, size_hint: int | None
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield random_bytes(LIMITS.min_part_size)
        raise CallerError("the client went away")

    settings = FAST.replace(multipart_threshold=LIMITS.min_part_size * 100)
    multipart_refused = MemoryBackend(LIMITS, chunk_size=1000)
    multipart_refused.inject("create_multipart", NotSupported("not here"), times=1)
    for target in (backend, multipart_refused):
        with make_store(target, settings) as store, pytest.raises(CallerError):
            store.write("s.bin", chunks(), size_hint=size_hint)
        with make_store(target, settings) as store:
            assert not store.exists("s.bin")


# -- every call bounded by the timeout ---------------------------------------------------------

HUNG = 5.0  # how long the "hung" backend call takes: far past the timeout
TIMEOUT = 0.5


def _hung_operations(tmp_path: Path) -> dict[str, tuple[str, object]]:
    """Operation name -> (hook made to hang, the store call)."""
    (tmp_path / "small.bin").write_bytes(b"x" * 100)
    (tmp_path / "big.bin").write_bytes(random_bytes(40 * KiB))
    out = tmp_path / "out"
    return {
        "stat": ("stat", lambda s: s.stat("a.bin")),
        "list": ("list", lambda s: s.list_artifacts("")),
        "iter_files": ("list", lambda s: list(s.iter_files(""))),
        "delete": ("delete", lambda s: s.delete("a.bin")),
        "delete_artifacts": ("delete", lambda s: s.delete_artifacts("a.bin")),
        "read": ("read", lambda s: s.read_bytes("a.bin")),
        "write": ("write", lambda s: s.write("w.bin", iter([b"x" * 10]))),
        "write_stream_parts": ("upload_part", lambda s: s.write("w.bin", iter([b"x" * KiB] * 40))),
        "upload": ("upload", lambda s: s.upload_file(str(tmp_path / "small.bin"), "w.bin")),
        "upload_parts": ("upload_part", lambda s: s.upload_file(str(tmp_path / "big.bin"), "w.bin")),
        "download": ("download", lambda s: s.download_file("a.bin", str(out / "a.bin"))),
        "download_ranges": ("read", lambda s: s.download_file("big.bin", str(out / "big.bin"))),
        "download_tree": ("list", lambda s: s.download_tree("", str(out))),
        "copy": ("copy", lambda s: s.copy_to("a.bin", s, "c.bin")),
    }


@pytest.mark.parametrize(
    "operation",
    [
        "stat", "list", "iter_files", "delete", "delete_artifacts", "read", "write",
        "write_stream_parts", "upload", "upload_parts", "download", "download_ranges",
        "download_tree", "copy",
    ],
)  # fmt: skip
def test_a_hung_backend_call_times_out_at_the_deadline(
    backend: MemoryBackend, tmp_path: Path, operation: str
) -> None:
    """Whatever the call, the caller gets OperationTimeout at the deadline, not when the backend returns."""
    with make_store(backend) as setup:
        setup.write_bytes("a.bin", b"data")
        setup.write_bytes("big.bin", random_bytes(40 * KiB))
    hook, run = _hung_operations(tmp_path)[operation]
    backend.inject(hook, None, delay=HUNG, times=1000)
    store = make_store(backend, FAST.replace(timeout=TIMEOUT, max_retries=0))
    started = time.monotonic()
    with pytest.raises(OperationTimeout, match="MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT") as caught:
        run(store)  # type: ignore[operator]
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 1.5, f"{operation} answered after {elapsed:.1f} s"
    assert "memory://b/root" in str(caught.value)  # names the location
    assert backend.objects("b").get("root/w.bin") is None and backend.objects("b").get("root/c.bin") is None
    out = tmp_path / "out"
    # nothing partial where it would be seen (a download keeps its hidden partial file to resume)
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file() and p.name not in leftovers(out)]
    # Not store.close(): it would wait for the engine's pools, which are not stuck (the
    # calls are); close them without waiting to keep the test short.
    store.engine._files().shutdown(wait=False)
    store.engine._chunks().shutdown(wait=False)


def test_a_stream_stalled_midway_times_out(tmp_path: Path) -> None:
    """A read stream whose backend stops sending midway fails at the deadline, not when it resumes."""
    stalled = threading.Event()

    class Stalling(MemoryBackend):
        @hookimpl
        def read(self, root: object, path: str, offset: int, length: int | None) -> Iterator[bytes]:
            yield b"first"
            stalled.set()
            time.sleep(HUNG)
            yield b"late"

    backend = Stalling(LIMITS, chunk_size=1000)
    store = make_store(backend, FAST.replace(timeout=TIMEOUT))
    store.write_bytes("a.bin", b"firstlate")
    started = time.monotonic()
    chunks = store.read("a.bin")
    assert next(chunks) == b"first"
    with pytest.raises(OperationTimeout):
        next(chunks)
    assert stalled.is_set() and time.monotonic() - started < TIMEOUT + 1.5


def test_a_write_whose_backend_hangs_stores_nothing_when_it_resumes(tmp_path: Path) -> None:
    """An abandoned streamed write never completes: its next read of the stream fails."""

    class Hanging(MemoryBackend):
        @hookimpl
        def write(self, root: object, path: str, chunks: Iterator[bytes]) -> None:
            data = next(iter(chunks))
            time.sleep(1.0)  # hung past the deadline, then it resumes
            super().write(root, path, [data, *chunks])  # type: ignore[arg-type]

    backend = Hanging(None, chunk_size=1000)  # no multipart: one streamed write
    store = make_store(backend, FAST.replace(timeout=0.3))
    with pytest.raises(OperationTimeout):
        store.write("w.bin", iter([b"a" * 10, b"b" * 10, b"c" * 10]))
    time.sleep(1.5)  # the abandoned write has resumed and failed by now
    assert backend.objects("b").get("root/w.bin") is None


def test_bounded_calls_reuse_their_threads(backend: MemoryBackend) -> None:
    """With a timeout, calls run on a few reused daemon threads, not one new thread per call."""
    with make_store(backend, FAST.replace(timeout=30)) as store:
        store.write_bytes("a.bin", b"data")
        started = {t.ident for t in threading.enumerate() if t.name == "mlartifacts-bounded"}
        for _ in range(200):
            assert store.stat("a.bin").file_size == 4
        bounded = [t for t in threading.enumerate() if t.name == "mlartifacts-bounded"]
    assert all(t.daemon for t in bounded)  # a thread stuck in a hung call never holds the exit
    assert len({t.ident for t in bounded} - started) <= 2
