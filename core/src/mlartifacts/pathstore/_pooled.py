"""Pooled sessions for remote path stores: a session held by an open reader or writer."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from ..errors import ArtifactError
from ..pool import SessionPool

__all__ = ["Lease", "reusable_unless"]

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
