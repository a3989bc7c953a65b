"""Transfer journals: what an interrupted upload or download already moved, kept on disk.

One file per transfer in the state directory (``Settings.state_dir``, default
:func:`mlartifacts.config.default_state_dir`), named by a hash of what identifies
the transfer (kind, local file, destination). It holds JSON lines: a header first
(the upload id or the object's identity, sizes, when it began), then one line per
part or range confirmed. The header is written to a temporary and renamed into
place; entries are appended, one ``write`` each, so a process killed mid-write
leaves at most one torn last line, which readers skip. A lock file held with
``flock`` for the whole transfer keeps two processes from driving the same
transfer; the second one runs without a journal (its transfer does not resume).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..config import Settings, default_state_dir

__all__ = ["Journal", "JournalFile", "journal_files", "open_journal", "remove_journal", "state_dir"]

log = logging.getLogger("mlartifacts.transfer")

VERSION = 1
_SUFFIX = ".jsonl"
_LOCK_SUFFIX = ".lock"

if sys.platform != "win32":  # Windows has no flock: a second process shares the journal there
    import fcntl


def state_dir(settings: Settings) -> str:
    """The directory holding the journals for these settings."""
    return settings.state_dir or default_state_dir()


@dataclass
class Journal:
    """One transfer's journal, locked by this process until :meth:`close`."""

    path: str
    header: dict[str, Any] | None = None
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    _lock_fd: int | None = None
    _fd: int | None = None
    _mutex: threading.Lock = field(default_factory=threading.Lock)  # parts are confirmed in parallel

    def load(self) -> None:
        """Read the header and the confirmed entries (a torn last line is skipped)."""
        self.header, self.entries = None, {}
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read transfer journal %s: %s", self.path, exc)
            return
        try:
            header = json.loads(lines[0])
        except (ValueError, IndexError):
            return
        if not isinstance(header, dict) or header.get("v") != VERSION:
            return
        self.header = header
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                self.entries[int(entry["n"])] = entry
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a killed process: that entry was never confirmed

    def start(self, header: dict[str, Any]) -> None:
        """Begin afresh with ``header``: written whole to a temporary, renamed into place."""
        self._close_fd()
        header = {"v": VERSION, "created": time.time(), **header}
        directory = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(header, separators=(",", ":")) + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.header, self.entries = header, {}

    def record(self, number: int, **values: Any) -> None:
        """Append one confirmed part or range (a single write: atomic against a kill)."""
        entry = {"n": number, **values}
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._mutex:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                os.write(self._fd, line)
            except OSError as exc:  # a journal that cannot be written costs a resume, not the transfer
                log.warning("cannot write transfer journal %s: %s", self.path, exc)
                return
            self.entries[number] = entry

    def discard(self) -> None:
        """Forget the transfer (done, or not resumable)."""
        self._close_fd()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.header, self.entries = None, {}

    def close(self) -> None:
        """Release the lock (the journal itself stays, for the next attempt)."""
        self._close_fd()
        if self._lock_fd is not None:
            if not os.path.exists(self.path):  # nothing left to resume: no lock file either
                with contextlib.suppress(FileNotFoundError):  # safe while held (see _lock)
                    os.unlink(self.path[: -len(_SUFFIX)] + _LOCK_SUFFIX)
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _close_fd(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _name(kind: str, key: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([kind, *key]).encode()).hexdigest()[:40]
    return f"{kind}-{digest}"


def _lock(path: str) -> int | None:
    """An exclusive, non-blocking lock on ``path`` (created if missing); None if another holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if sys.platform == "win32":
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        # The file may have been removed (gc) between our open and our lock: then the
        # lock guards nothing; take it again on the file that is there now.
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def open_journal(settings: Settings, kind: str, key: list[str]) -> Journal | None:
    """The locked journal of one transfer (loaded), or None: resuming off, busy, or no state dir."""
    if not settings.resume:
        return None
    directory = state_dir(settings)
    name = _name(kind, key)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        lock_fd = _lock(os.path.join(directory, name + _LOCK_SUFFIX))
    except OSError as exc:
        log.warning("transfers will not resume: cannot use the state directory %s: %s", directory, exc)
        return None
    if lock_fd is None:
        log.info("another process is running this transfer (%s); this one will not resume", name)
        return None
    journal = Journal(os.path.join(directory, name + _SUFFIX), _lock_fd=lock_fd)
    journal.load()
    return journal


@dataclass(frozen=True)
class JournalFile:
    """A journal found in the state directory (for gc)."""

    path: str
    kind: str
    created: float | None
    header: dict[str, Any] | None


def journal_files(directory: str) -> Iterator[JournalFile]:
    """Every journal in ``directory``, with its header where readable."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(_SUFFIX):
            continue
        journal = Journal(os.path.join(directory, name))
        journal.load()
        created = journal.header.get("created") if journal.header else None
        if created is None:
            with contextlib.suppress(OSError):
                created = os.path.getmtime(journal.path)
        yield JournalFile(journal.path, name.split("-", 1)[0], created, journal.header)


def remove_journal(found: JournalFile) -> bool:
    """Remove a journal and what it kept (a download's partial file) unless it is in use."""
    lock_path = found.path[: -len(_SUFFIX)] + _LOCK_SUFFIX
    lock_fd = _lock(lock_path)
    if lock_fd is None:
        return False  # a transfer is running it now
    try:
        partial = (found.header or {}).get("partial")
        if isinstance(partial, str) and os.path.basename(partial).startswith(".mlartifacts-partial-"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(found.path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
    finally:
        os.close(lock_fd)
    return True
