"""Pooled sessions for remote path stores: one-call primitives, sessions held by readers and writers."""

from __future__ import annotations

import abc
from typing import Callable, Generic, Protocol, TypeVar

from ..errors import ArtifactError
from ..pool import SessionPool
from ._protocol import PathFileSystem

__all__ = ["Commands", "Lease", "LeasedWriter", "PooledFileSystem", "reusable_unless"]

S = TypeVar("S")
T = TypeVar("T")


def reusable_unless(
    lost: Callable[[BaseException], bool], replies: tuple[type[BaseException], ...]
) -> Callable[[BaseException], bool]:
    """A pool's ``reusable``: a session that raised one of the server's ``replies`` is still in step.

    Args:
        lost: whether an exception means the connection is gone.
        replies: the SDK's exception types for a status reply ("no such file"...).
    """

    def reusable(exc: BaseException) -> bool:
        if isinstance(exc, ArtifactError):
            return not exc.transient
        return isinstance(exc, replies) and not lost(exc)

    return reusable


class Lease(Generic[S]):
    """A session borrowed beyond a ``with`` block: an open reader or writer holds it.

    ``end(reuse)`` gives it back once (later calls do nothing): to the pool when the
    exchange ended in step with the server, else it is closed. Typical use::

        lease = Lease(pool)
        handle = lease.begin(lambda session: session.open(path))  # fails: given back at once
        ...
        lease.end(reuse=finished)
    """

    def __init__(self, pool: SessionPool[S]) -> None:
        self.pool = pool
        self.session = pool.acquire()
        self._ended = False

    @property
    def ended(self) -> bool:
        """Whether the session was given back (or closed) already."""
        return self._ended

    def begin(self, start: Callable[[S], T]) -> T:
        """Run ``start`` on the session; if it raises, end the lease as the pool's rules say."""
        try:
            return start(self.session)
        except BaseException as exc:
            self.end(self.pool.reusable(exc))
            raise

    def end(self, reuse: bool) -> None:
        """Give the session back (``reuse``) or close it; only the first call counts."""
        if self._ended:
            return
        self._ended = True
        if reuse:
            self.pool.release(self.session)
        else:
            self.pool.discard(self.session)


class LeasedWriter(Generic[S]):
    """A writer holding a pooled session until ``finish(complete)`` ends the exchange on it.

    ``close`` finishes a complete write (its errors are the write's); ``abort`` a
    failed one, quietly. Either way the session goes back to the pool, unless
    finishing raised an error that leaves it unusable: then it is closed.
    """

    def __init__(
        self, lease: Lease[S], write: Callable[[bytes], object], finish: Callable[[bool], None]
    ) -> None:
        self.lease, self._write, self._finish = lease, write, finish

    def write(self, data: bytes) -> None:
        self._write(data)

    def close(self) -> None:
        self._end(complete=True)

    def abort(self) -> None:
        try:
            self._end(complete=False)
        except Exception:  # noqa: BLE001 - the write's own error is what matters; the lease ended
            pass

    def _end(self, complete: bool) -> None:
        if self.lease.ended:
            return
        try:
            self._finish(complete)
        except BaseException as exc:
            self.lease.end(reuse=self.lease.pool.reusable(exc))
            raise
        self.lease.end(reuse=True)


class Commands(Protocol):
    """What a session's client offers for the one-call primitives (paramiko's SFTPClient does)."""

    def remove(self, path: str, /) -> object: ...

    def rmdir(self, path: str, /) -> object: ...

    def mkdir(self, path: str, /) -> object: ...


class PooledFileSystem(PathFileSystem, Generic[S]):
    """A remote store whose primitives each borrow one of its pooled, logged-in sessions.

    ``remove``, ``rmdir`` and ``mkdir`` are one call each on what ``commands`` gives
    for a session; the other primitives are the subclass's.
    """

    def __init__(self, pool: SessionPool[S]) -> None:
        self.pool = pool

    @abc.abstractmethod
    def commands(self, session: S) -> Commands:
        """The object whose ``remove``, ``rmdir`` and ``mkdir`` act on the store for ``session``."""

    def lease(self) -> Lease[S]:
        """A session for a reader or writer to hold until it ends."""
        return Lease(self.pool)

    def remove(self, path: str) -> None:
        with self.pool.session() as session:
            self.commands(session).remove(path)

    def rmdir(self, path: str) -> None:
        with self.pool.session() as session:
            self.commands(session).rmdir(path)

    def mkdir(self, path: str) -> None:
        with self.pool.session() as session:
            self.commands(session).mkdir(path)
