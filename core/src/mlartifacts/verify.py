"""``verify``: check stored files against their recorded digests, or against a local tree.

Against their digests, every file is read back through the transfer engine's read
path (resuming on transient errors), hashed as it streams and thrown away: nothing
is written anywhere. A file whose listing carries no SHA-256 digest is checked by the
backend's own checksum when it keeps one (an MD5 ETag...), else by its size only:
it is counted as *unverifiable by digest*, which is not a failure unless
``require_digest`` is set. A file whose recorded digest no longer describes it (a path
store's record of another size or time: the file was changed outside mlartifacts) is
hashed all the same: *changed* since it was recorded unless its bytes still match.

Against a local directory, nothing is read from the store: its listing is compared
with the directory's files (missing, extra, different size, different digest, the
local file being hashed only where the store recorded one; a stored file changed since
its digest was recorded is *changed*).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._trees import LocalTree, StoreTree
from ._types import FileInfo
from .errors import ArtifactError, IntegrityError
from .transfer import NullProgress, Progress
from .transfer._checksums import hasher, hexdigest

if TYPE_CHECKING:
    from .store import ArtifactStore

__all__ = ["VerifyIssue", "VerifyReport", "verify", "verify_against"]

#: Problems a report lists. ``no-digest`` is one only with ``require_digest``.
PROBLEMS = ("missing", "extra", "size", "digest", "changed", "checksum", "no-digest", "error")


@dataclass(frozen=True)
class VerifyIssue:
    """One file that failed verification, and how."""

    path: str
    #: ``missing`` (only in the local tree), ``extra`` (only in the store), ``size``,
    #: ``digest`` (SHA-256 differs), ``changed`` (changed since its digest was recorded,
    #: outside mlartifacts), ``checksum`` (the backend's checksum differs),
    #: ``no-digest`` (none recorded, with ``require_digest``), ``error`` (unreadable).
    problem: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready form."""
        return {"path": self.path, "problem": self.problem, "detail": self.detail}


@dataclass
class VerifyReport:
    """The outcome of a verification: how each file was checked, and what failed."""

    uri: str
    against: str | None = None
    files: int = 0
    #: Files whose SHA-256 digest matched.
    by_digest: int = 0
    #: Files without a digest whose backend checksum matched.
    by_checksum: int = 0
    #: Files with neither, whose size matched: unverifiable by digest.
    size_only: list[str] = field(default_factory=list)
    issues: list[VerifyIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing differs."""
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``mlartifacts verify --json``)."""
        return {
            "uri": self.uri,
            "against": self.against,
            "ok": self.ok,
            "files": self.files,
            "verified_by_digest": self.by_digest,
            "verified_by_checksum": self.by_checksum,
            "unverifiable_by_digest": sorted(self.size_only),
            "issues": [issue.to_dict() for issue in sorted(self.issues, key=lambda i: i.path)],
        }


class _Tally:
    """Collects per-file outcomes from worker threads."""

    def __init__(self, report: VerifyReport, require_digest: bool) -> None:
        self.report = report
        self.require_digest = require_digest
        self._lock = threading.Lock()

    def issue(self, path: str, problem: str, detail: str) -> None:
        with self._lock:
            self.report.issues.append(VerifyIssue(path, problem, detail))

    def passed(self, path: str, method: str) -> None:
        """``path`` matched by ``method``: ``digest``, ``checksum`` or ``size``."""
        if method != "digest" and self.require_digest:
            self.issue(path, "no-digest", f"no SHA-256 digest recorded (matched by {method})")
        with self._lock:
            if method == "digest":
                self.report.by_digest += 1
            elif method == "checksum":
                self.report.by_checksum += 1
            else:
                self.report.size_only.append(path)


def _check_stored(store: ArtifactStore, tree: StoreTree, rel: str, tally: _Tally, progress: Progress) -> None:
    info = tree.files[rel]
    digest = hasher("sha256") if info.digest or info.stale_digest else None
    checksum = info.checksum
    native = hasher(checksum.algorithm) if checksum is not None and not info.digest else None
    received = 0
    try:
        for chunk in store.read(tree.full_path(rel)):
            received += len(chunk)
            if digest is not None:
                digest.update(chunk)
            if native is not None:
                native.update(chunk)
            progress.update(len(chunk))
    except IntegrityError as exc:  # the read path verifies too, where it can
        tally.issue(rel, "digest", str(exc))
        return
    except ArtifactError as exc:
        tally.issue(rel, "error", str(exc))
        return
    finally:
        progress.file_done(rel)
    if info.file_size is not None and received != info.file_size:
        tally.issue(rel, "size", f"read {received} bytes, listed as {info.file_size}")
    elif digest is not None and info.digest:
        actual = hexdigest(digest)
        if actual != info.digest.lower():
            tally.issue(rel, "digest", f"sha256 of the stored bytes is {actual}, recorded {info.digest}")
        else:
            tally.passed(rel, "digest")
    elif digest is not None and info.stale_digest:
        actual = hexdigest(digest)
        if actual != info.stale_digest.lower():
            tally.issue(rel, "changed", f"{_CHANGED}: sha256 now {actual}, recorded {info.stale_digest}")
        else:
            tally.passed(rel, "digest")  # only its time changed: the bytes are those recorded
    elif native is not None and checksum is not None:
        actual = hexdigest(native)
        if actual != checksum.value.lower():
            name = checksum.algorithm
            tally.issue(rel, "checksum", f"{name} of the stored bytes is {actual}, recorded {checksum.value}")
        else:
            tally.passed(rel, "checksum")
    else:
        tally.passed(rel, "size")


#: Why a file whose record no longer describes it is reported.
_CHANGED = "changed in the store since its digest was recorded (its size or time differ from the record)"


def verify(
    store: ArtifactStore,
    path: str = "",
    *,
    require_digest: bool = False,
    progress: Progress | None = None,
) -> VerifyReport:
    """Read back every file below ``path`` (or the file it names) and check it against its digest."""
    tree = StoreTree.scan(store, path, allow_file=True)
    report = VerifyReport(store.backend.where(tree.path), files=len(tree.files))
    tally = _Tally(report, require_digest)
    progress = progress or NullProgress()
    progress.begin(sum(info.file_size or 0 for info in tree.files.values()), len(tree.files))
    try:
        workers = max(1, store.settings.max_workers)
        with ThreadPoolExecutor(workers, thread_name_prefix="mlartifacts-verify") as pool:
            list(pool.map(lambda rel: _check_stored(store, tree, rel, tally, progress), sorted(tree.files)))
    finally:
        progress.end()
    return report


def _compare_local(rel: str, local: LocalTree, stored: FileInfo, digest: str | None, tally: _Tally) -> None:
    here = local.files[rel]
    if stored.file_size is not None and stored.file_size != here.file_size:
        tally.issue(rel, "size", f"{here.file_size} bytes locally, {stored.file_size} stored")
        return
    if not stored.digest and stored.stale_digest:
        # Nothing is read from the store here: what it holds now is unknown, so not "equal".
        tally.issue(rel, "changed", f"{_CHANGED} (recorded {stored.stale_digest})")
        return
    if stored.digest:
        if digest is None:
            tally.issue(rel, "error", "the local file vanished while being compared")
        elif digest != stored.digest.lower():
            tally.issue(rel, "digest", f"sha256 locally {digest}, recorded {stored.digest}")
        else:
            tally.passed(rel, "digest")
        return
    checksum = stored.checksum
    if checksum is not None and digest is not None:
        if digest != checksum.value.lower():
            name = checksum.algorithm
            tally.issue(rel, "checksum", f"{name} locally {digest}, recorded {checksum.value}")
        else:
            tally.passed(rel, "checksum")
        return
    tally.passed(rel, "size")


def verify_against(
    store: ArtifactStore,
    local_dir: str,
    path: str = "",
    *,
    require_digest: bool = False,
) -> VerifyReport:
    """Compare the files below ``path`` with a local directory, by listing and digest."""
    local = LocalTree.scan(local_dir)
    tree = StoreTree.scan(store, path, must_exist=False)
    report = VerifyReport(store.backend.where(tree.path), against=local.root)
    tally = _Tally(report, require_digest)
    both = sorted(set(local.files) & set(tree.files))
    report.files = len(set(local.files) | set(tree.files))
    for rel in sorted(set(local.files) - set(tree.files)):
        tally.issue(rel, "missing", "in the local tree, not in the store")
    for rel in sorted(set(tree.files) - set(local.files)):
        tally.issue(rel, "extra", "in the store, not in the local tree")
    wanted: dict[str, str] = {}
    for rel in both:
        stored = tree.files[rel]
        if stored.file_size == local.files[rel].file_size:
            algorithm = "sha256" if stored.digest else stored.checksum.algorithm if stored.checksum else None
            if algorithm is not None and hasher(algorithm) is not None:
                wanted[rel] = algorithm.lower()
    local.with_digests(list(wanted.items()), store.settings.max_workers)
    for rel in both:
        digest = local.digest(rel, wanted[rel]) if rel in wanted else None
        _compare_local(rel, local, tree.files[rel], digest, tally)
    return report
