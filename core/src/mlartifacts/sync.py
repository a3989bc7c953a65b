"""``sync``: make a destination tree hold what a source tree holds, moving only what differs.

Either side is a local directory or a path in an :class:`~mlartifacts.ArtifactStore`.
Both are listed once; a file is copied when it is missing at the destination or
differs from it, decided in this order:

1. sizes, when both are known and differ;
2. contents, where both sides know a digest of the same kind: the SHA-256
   ``FileInfo.digest`` mlartifacts records on upload, else a checksum the backend
   keeps natively (an MD5 ETag...). A local file is hashed only for this, only
   when the other side has such a digest and the sizes match (``compare="digest"``);
3. with ``compare="digest"``, a side whose recorded digest no longer describes it (a
   path store's file changed outside mlartifacts since its digest was recorded): its
   content is unknown, so it is copied again;
4. with ``compare="mtime"``, the source being newer (by more than a second);
5. otherwise, equal sizes mean equal files.

So a re-run over an unchanged tree costs two listings (and, towards or from a local
directory, reading local files where digests are compared), never a transfer.
Copies run in parallel through the transfer engine (an upload, a download or a
store-to-store copy); ``delete`` then removes destination files the source lacks.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union

from ._trees import LocalTree, StoreTree, Tree
from ._types import FileInfo
from .errors import NotFound
from .transfer import NullProgress, Progress
from .transfer._checksums import hasher

if TYPE_CHECKING:
    from .store import ArtifactStore

__all__ = ["COMPARE_MODES", "SyncAction", "SyncResult", "decide", "digest_algorithm", "sync"]

Compare = Literal["digest", "size", "mtime"]
#: How files are compared: ``digest`` (the default) hashes a local file when the other side
#: records a digest; ``size`` never hashes; ``mtime`` adds "the source is newer" and never hashes.
COMPARE_MODES: tuple[str, ...] = ("digest", "size", "mtime")

#: Timestamps closer than this are the same time: stores keep whole seconds, disks more.
MTIME_WINDOW = 1.0

Side = Union["ArtifactStore", str, "os.PathLike[str]"]


@dataclass(frozen=True)
class SyncAction:
    """One change a sync makes: a file copied (and why) or deleted at the destination."""

    op: Literal["copy", "delete"]
    #: The file's path relative to both roots.
    path: str
    #: copy: ``new``, ``size``, ``digest``, ``checksum``, ``changed`` (a side changed since its
    #: digest was recorded), ``newer`` or ``unknown``;
    #: delete: ``absent`` (not in the source).
    reason: str
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"path": self.path, "reason": self.reason, "size": self.size}


@dataclass
class SyncResult:
    """What a sync copied, deleted and left alone (or, in a dry run, would have)."""

    src: str
    dst: str
    copied: list[SyncAction] = field(default_factory=list)
    deleted: list[SyncAction] = field(default_factory=list)
    #: Files already identical at the destination.
    skipped: int = 0
    #: Files only at the destination, kept (``delete`` not asked).
    kept: int = 0
    dry_run: bool = False

    @property
    def bytes_copied(self) -> int:
        """The bytes of the copied files."""
        return sum(action.size or 0 for action in self.copied)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``mlartifacts sync --json``)."""
        return {
            "src": self.src,
            "dst": self.dst,
            "dry_run": self.dry_run,
            "copied": [a.to_dict() for a in self.copied],
            "deleted": [a.to_dict() for a in self.deleted],
            "skipped": self.skipped,
            "kept": self.kept,
            "bytes_copied": self.bytes_copied,
        }


# -- comparing two files ---------------------------------------------------------------------


def _recorded(info: FileInfo) -> list[str]:
    """The digest algorithms a listing entry carries, SHA-256 first."""
    found = ["sha256"] if info.digest else []
    if info.checksum is not None and info.checksum.algorithm.lower() not in found:
        found.append(info.checksum.algorithm.lower())
    return found


def digest_algorithm(
    src: FileInfo, dst: FileInfo, *, src_local: bool = False, dst_local: bool = False
) -> str | None:
    """The digest both sides can give for this pair, or None: compare by size.

    A store side gives what its listing recorded; a local side can compute any
    algorithm this process can hash (and is only asked when the other side has one).
    """
    if src_local and dst_local:
        return "sha256"
    if src_local or dst_local:
        recorded = _recorded(dst if src_local else src)
        return next((name for name in recorded if hasher(name) is not None), None)
    common = [name for name in _recorded(src) if name in _recorded(dst)]
    return common[0] if common else None


def decide(
    src: FileInfo,
    dst: FileInfo | None,
    compare: str = "digest",
    algorithm: str | None = None,
    src_digest: str | None = None,
    dst_digest: str | None = None,
) -> str | None:
    """Why ``src`` must be copied over ``dst`` (``new``, ``size``...), or None when they match.

    ``src_digest`` / ``dst_digest`` are both sides' digests with ``algorithm`` (from
    :func:`digest_algorithm`); None where unknown.
    """
    if dst is None:
        return "new"
    sized = src.file_size is not None and dst.file_size is not None
    if sized and src.file_size != dst.file_size:
        return "size"
    if compare != "size" and algorithm and src_digest and dst_digest:
        if src_digest.lower() == dst_digest.lower():
            return None
        return "digest" if algorithm == "sha256" else "checksum"
    if compare == "digest" and (src.stale_digest or dst.stale_digest):
        return "changed"  # same size, but one side is no longer what its record says
    if compare == "mtime" and src.modified is not None and dst.modified is not None:
        return "newer" if src.modified > dst.modified + MTIME_WINDOW else None
    return None if sized else "unknown"


# -- planning --------------------------------------------------------------------------------


def _plan(src: Tree, dst: Tree, compare: str, delete: bool, workers: int) -> SyncResult:
    result = SyncResult(_describe(src), _describe(dst))
    pairs: list[tuple[str, FileInfo, FileInfo, str | None]] = []
    for rel, info in sorted(src.files.items()):
        other = dst.files.get(rel)
        if other is None:
            result.copied.append(SyncAction("copy", rel, "new", info.file_size))
            continue
        algorithm = None
        same_size = info.file_size is not None and info.file_size == other.file_size
        recorded_both = not (src.is_local or dst.is_local)
        # Hash a local file only in digest mode and when sizes cannot already tell.
        if same_size and (compare == "digest" or (compare == "mtime" and recorded_both)):
            algorithm = digest_algorithm(info, other, src_local=src.is_local, dst_local=dst.is_local)
        pairs.append((rel, info, other, algorithm))
    for tree in (src, dst):
        if isinstance(tree, LocalTree):
            tree.with_digests([(rel, alg) for rel, _, _, alg in pairs if alg], workers)
    for rel, info, other, algorithm in pairs:
        src_digest = src.digest(rel, algorithm) if algorithm else None
        dst_digest = dst.digest(rel, algorithm) if algorithm else None
        reason = decide(info, other, compare, algorithm, src_digest, dst_digest)
        if reason is None:
            result.skipped += 1
        else:
            result.copied.append(SyncAction("copy", rel, reason, info.file_size))
    extra = sorted(set(dst.files) - set(src.files))
    if delete:
        result.deleted = [SyncAction("delete", rel, "absent", dst.files[rel].file_size) for rel in extra]
    else:
        result.kept = len(extra)
    return result


def _describe(tree: Tree) -> str:
    if isinstance(tree, LocalTree):
        return tree.root
    return tree.store.backend.where(tree.path)


# -- running ---------------------------------------------------------------------------------


def _copy(src: Tree, dst: Tree, actions: list[SyncAction], progress: Progress) -> None:
    rels = [action.path for action in actions]
    if isinstance(src, LocalTree) and isinstance(dst, StoreTree):
        files = [(src.local_path(rel), rel, src.files[rel].file_size or 0) for rel in rels]
        dst.store.engine.upload_files(dst.store.backend, files, dst.path, progress)
    elif isinstance(src, StoreTree) and isinstance(dst, LocalTree):
        entries = [src.entries[rel] for rel in rels]
        src.store.engine.download_entries(src.store.backend, src.path, entries, dst.root, progress)
        for rel in rels:  # the source's time, so `compare="mtime"` sees the copy as current
            modified = src.files[rel].modified
            if modified is not None:
                with contextlib.suppress(OSError):
                    os.utime(dst.local_path(rel), (modified, modified))
    elif isinstance(src, StoreTree) and isinstance(dst, StoreTree):
        entries = [src.entries[rel] for rel in rels]
        src.store.engine.copy_entries(
            src.store.backend, src.path, entries, dst.store.backend, dst.path, progress
        )
    else:  # pragma: no cover - sync() turns a local destination of a local source into a store
        raise ValueError("a sync between two local directories goes through a store")


def _delete(dst: Tree, actions: list[SyncAction], workers: int) -> None:
    if isinstance(dst, LocalTree):
        emptied: set[str] = set()
        for action in actions:
            local = dst.local_path(action.path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(local)
            emptied.add(os.path.dirname(local))
        _prune(dst.root, emptied)
        return
    store = dst.store

    def remove(action: SyncAction) -> None:
        with contextlib.suppress(NotFound):  # gone already: what we wanted
            store.delete(dst.full_path(action.path))

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="mlartifacts-delete") as pool:
        list(pool.map(remove, actions))


def _prune(root: str, directories: set[str]) -> None:
    """Remove the directories that deleting files left empty, up to (not including) ``root``."""
    for directory in sorted(directories, key=len, reverse=True):
        while directory != root and directory.startswith(root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:  # not empty (or gone): its parents are not empty either
                break
            directory = os.path.dirname(directory)


def _tree(side: Side, path: str, *, source: bool) -> Tree:
    from .store import ArtifactStore

    if isinstance(side, ArtifactStore):
        return StoreTree.scan(side, path, must_exist=source)
    root = os.path.join(os.fspath(side), path) if path else os.fspath(side)
    return LocalTree.scan(root, must_exist=source)


def sync(
    src: Side,
    dst: Side,
    *,
    src_path: str = "",
    dst_path: str = "",
    delete: bool = False,
    dry_run: bool = False,
    compare: str = "digest",
    progress: Progress | None = None,
) -> SyncResult:
    """Copy what is missing or different from ``src`` to ``dst``; optionally delete the rest.

    Args:
        src, dst: an :class:`~mlartifacts.ArtifactStore`, or a local directory (a path).
            Two local directories: the destination is opened as a store of the local disk.
        src_path, dst_path: a directory below each side (default: its root).
        delete: remove destination files that the source does not have.
        dry_run: plan only; change nothing and return what would be done.
        compare: ``digest`` (default), ``size`` or ``mtime`` (see the module's doc).
        progress: a listener for the copies (one operation, every file copied).

    Returns:
        The :class:`SyncResult`: copied, deleted, skipped.

    Raises:
        NotFound: the source does not exist (or, in a store, holds no file).
        InvalidPath: a side is a file, not a directory.
    """
    from .store import ArtifactStore

    if compare not in COMPARE_MODES:
        raise ValueError(f"compare must be one of {', '.join(COMPARE_MODES)}, not {compare!r}")
    owned: ArtifactStore | None = None
    if not isinstance(src, ArtifactStore) and not isinstance(dst, ArtifactStore):
        local_dst = os.path.join(os.fspath(dst), dst_path) if dst_path else os.fspath(dst)
        owned = dst = ArtifactStore(os.path.abspath(local_dst))
        dst_path = ""
    try:
        source = _tree(src, src_path, source=True)
        target = _tree(dst, dst_path, source=False)
        workers = _workers(src, dst)
        result = _plan(source, target, compare, delete, workers)
        result.dry_run = dry_run
        if dry_run:
            return result
        if result.copied:
            _copy(source, target, result.copied, progress or NullProgress())
        if result.deleted:
            _delete(target, result.deleted, workers)
        return result
    finally:
        if owned is not None:
            owned.close()


def _workers(*sides: Side) -> int:
    from .store import ArtifactStore

    for side in sides:
        if isinstance(side, ArtifactStore):
            return side.settings.max_workers
    return os.cpu_count() or 4
