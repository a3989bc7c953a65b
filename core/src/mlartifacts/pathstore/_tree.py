"""Directories, derived from the primitives: ``mkdir -p`` with a cache, sorted walks, tree deletes."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Iterator

from .._types import FileInfo
from ..errors import InvalidPath, NotFound, PreconditionFailed
from ..paths import DIGEST_PREFIX, TEMP_PREFIX
from ._digests import read_record, remove_sidecar
from ._protocol import PathInfo
from ._root import PathRoot

__all__ = ["children", "delete", "makedirs", "temporaries", "walk_files"]

log = logging.getLogger("mlartifacts.pathstore")


def makedirs(root: PathRoot, directory: str, where: str) -> None:
    """``mkdir -p directory`` (a store path), skipping directories known to exist."""
    with root.fs.known_dirs.making(directory):
        if directory not in root.fs.known_dirs:  # another writer may have made it meanwhile
            _makedirs(root, directory, where)


def _makedirs(root: PathRoot, directory: str, where: str) -> None:
    fs, known = root.fs, root.fs.known_dirs
    missing: list[str] = []
    current = directory
    while current not in known:
        info = fs.stat(current)
        if info is None:
            parent = fs.pathmod.dirname(current)
            if parent == current:
                break
            missing.append(current)
            current = parent
            continue
        if not info.is_dir:
            raise InvalidPath(f"cannot write {where}: a file is in the way of its directory")
        break
    for path in reversed(missing):
        try:
            fs.mkdir(path)
        except Exception as exc:
            # Another writer may have made it meanwhile: only a directory still missing is an error.
            error = fs.translate(exc, where, "write")
            info = None if error.transient else fs.stat(path)
            if info is None:
                raise error from exc
            if not info.is_dir:
                raise InvalidPath(f"cannot write {where}: a file is in the way of its directory") from exc
    for path in (directory, *missing):
        known.add(path)


def _info(rel: str, entry: PathInfo, record: tuple[str | None, str | None]) -> FileInfo:
    if entry.is_dir:
        return FileInfo(rel, True, modified=entry.modified)
    digest, stale = record
    return FileInfo(rel, False, entry.size, modified=entry.modified, digest=digest, stale_digest=stale)


def children(root: PathRoot, directory: str, rel: str) -> list[tuple[FileInfo, bool]]:
    """The entries of a directory as listed (none if it is missing or a file), sorted, each with
    whether a walk descends into it (directories that are not links, as ``os.walk``).

    Links are followed (a link to a file is a file); broken links, links the root
    refuses (out of it) and the toolkit's temporaries are left out.
    """
    fs = root.fs
    found = []
    entries = list(fs.listdir(directory) or ())
    # Files with a digest sidecar (read below, one small read each: none for files without).
    recorded = {e.name[len(DIGEST_PREFIX) :] for e in entries if e.name.startswith(DIGEST_PREFIX)}
    for entry in entries:
        name = entry.name
        if name in (".", "..") or name.startswith((TEMP_PREFIX, DIGEST_PREFIX)):
            continue
        child = f"{rel}/{name}" if rel else name
        if entry.link:
            try:
                root.path(child)  # refuses a link that leaves the root
            except InvalidPath as exc:
                log.warning("skipping %s: %s", root.where(child), exc)
                continue
        if entry.is_dir is None or (not entry.is_dir and entry.size is None):
            resolved = fs.stat(fs.pathmod.join(directory, name))
            if resolved is None:
                log.warning("skipping %s: a broken link", root.where(child))
                continue
            entry = replace(entry, is_dir=resolved.is_dir, size=resolved.size,
                            modified=entry.modified or resolved.modified)  # fmt: skip
        record: tuple[str | None, str | None] = (None, None)
        if not entry.is_dir:
            path = fs.pathmod.join(directory, name)
            record = read_record(fs, path, entry.size, entry.modified, sidecar=name in recorded)
        found.append((_info(child, entry, record), bool(entry.is_dir) and not entry.link))
    # A directory sorts as "name/": a depth-first walk then yields paths in sorted order.
    found.sort(key=lambda item: item[0].path + ("/" if item[1] else ""))
    return found


def walk_files(root: PathRoot, rel: str) -> Iterator[FileInfo]:
    """Every file below ``rel``, sorted by path (links to directories are not descended)."""
    join = root.fs.pathmod.join
    top = root.path(rel)
    stack = [(top, iter(children(root, top, rel)))]
    while stack:
        directory, entries = stack[-1]
        for info, descend in entries:
            if descend:  # walk it before the names that sort after it
                below = join(directory, info.path.rsplit("/", 1)[-1])
                stack.append((below, iter(children(root, below, info.path))))
                break
            if not info.is_dir:
                yield info
        else:
            stack.pop()


def delete(root: PathRoot, rel: str) -> None:
    """Remove the file, link or tree at ``rel`` (a tree at the store's own root is emptied)."""
    fs = root.fs
    target = root.path(rel)
    info = fs.stat(target, follow=False)
    if info is None:
        raise NotFound(f"no such file or directory: {root.where(rel)}")
    if not info.is_dir or info.link:
        fs.remove(target)
        if not info.is_dir:
            remove_sidecar(fs, target)
        return
    try:
        for attempt in range(_DELETE_ATTEMPTS):
            try:
                if fs.has("rmtree") and fs.pathmod.dirname(target) != target:
                    fs.rmtree(target)
                else:
                    _remove_tree(root, target)
                return
            except Exception as exc:
                # Writers (or another delete) changed the tree while it was removed: a file
                # appeared in a directory being removed, or vanished before its turn. Walk
                # it again; if it keeps changing, say so (409), never "directory not empty".
                error = fs.translate(exc, root.where(rel), "delete")
                if not isinstance(error, (PreconditionFailed, NotFound)):
                    raise error from exc
                if fs.stat(target, follow=False) is None:
                    return  # someone else finished the job
                if attempt + 1 == _DELETE_ATTEMPTS:
                    raise PreconditionFailed(
                        f"{root.where(rel)}: files kept appearing in it while it was deleted; try again"
                    ) from exc
    finally:
        fs.known_dirs.forget(target, fs.pathmod.sep)


#: Walks of a tree that writers keep changing while it is deleted.
_DELETE_ATTEMPTS = 5


def _remove_tree(root: PathRoot, top: str) -> None:
    """``rm -r``: files, links and temporaries first, then directories, deepest first."""
    fs = root.fs
    directories = [top]
    for directory in directories:  # grows while it is walked: breadth first
        for entry in fs.listdir(directory) or ():
            if entry.name in (".", ".."):
                continue
            path = fs.pathmod.join(directory, entry.name)
            if entry.is_dir and not entry.link:
                directories.append(path)
            else:
                fs.remove(path)
    for directory in reversed(directories):
        if fs.pathmod.dirname(directory) != directory:  # a store's own root stays
            fs.rmdir(directory)


def temporaries(root: PathRoot, rel: str) -> Iterator[tuple[str, PathInfo]]:
    """The toolkit's temporaries below ``rel`` (what interrupted writes left), with their directory."""
    fs = root.fs
    pending = [(root.path(rel), rel)]
    while pending:
        directory, prefix = pending.pop()
        for entry in sorted(fs.listdir(directory) or (), key=lambda e: e.name, reverse=True):
            if entry.name in (".", ".."):
                continue
            if entry.name.startswith(TEMP_PREFIX):
                if not entry.is_dir:
                    yield prefix, entry
            elif entry.is_dir and not entry.link:
                pending.append(
                    (
                        fs.pathmod.join(directory, entry.name),
                        f"{prefix}/{entry.name}" if prefix else entry.name,
                    )
                )
