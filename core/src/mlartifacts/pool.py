"""A bounded, thread-safe pool of reusable sessions, for plugins whose protocol has logins.

Backends without an SDK-side connection pool (SFTP channels, FTP control
connections...) keep their logged-in sessions here instead of logging in once
per file. The pool:

- never holds more than ``max_size`` sessions (in use plus idle); callers wait;
- reuses the most recently released session first (warm caches, fewer idle ones);
- re-checks a session that sat idle longer than ``check_after`` seconds
  (``alive``) and closes those idle longer than ``max_idle``;
- discards a session whose operation raised, unless ``reusable(exc)`` says the
  error left it usable (a "no such file" reply, for instance);
- lowers its limit when the server refuses another session (``refused(exc)``)
  while this process already holds some, and waits for one of those instead;
- after a fork, forgets (without closing: they belong to the parent) the sessions
  it inherited.

Typical use, in a plugin::

    pool = SessionPool(connect, close=lambda s: s.quit(), max_size=8,
                       reusable=lambda exc: isinstance(exc, ftplib.error_perm))
    with pool.session() as ftp:
        ftp.delete(name)
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["SessionPool", "close_all"]

S = TypeVar("S")

log = logging.getLogger("mlartifacts.pool")

_POOLS: weakref.WeakSet[SessionPool[object]] = weakref.WeakSet()


def _never(exc: BaseException) -> bool:
    return False


def _ignore(session: object) -> None:
    pass


class SessionPool(Generic[S]):
    """Sessions made by ``create``, lent out one caller at a time.

    Args:
        create: opens and logs in a new session.
        close: closes one (errors are logged, never raised).
        max_size: most sessions held at once.
        alive: a cheap health check for sessions that sat idle a while.
        reusable: whether a session that raised this exception may be reused.
        refused: whether this exception from ``create`` means "the server allows no
            more sessions": the pool then lowers its limit to what it holds.
        check_after: idle seconds after which ``alive`` is asked before reuse.
        max_idle: idle seconds after which a session is closed rather than reused.
        name: for log messages.
    """

    def __init__(
        self,
        create: Callable[[], S],
        *,
        close: Callable[[S], None] = _ignore,
        max_size: int = 8,
        alive: Callable[[S], bool] | None = None,
        reusable: Callable[[BaseException], bool] = _never,
        refused: Callable[[BaseException], bool] = _never,
        check_after: float = 15.0,
        max_idle: float = 300.0,
        name: str = "pool",
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._create = create
        self._close = close
        self._alive = alive
        self._reusable = reusable
        self._refused = refused
        self.check_after = check_after
        #: Seconds to wait before asking once more for a session the server refused.
        self.refusal_pause = 0.3
        self.max_idle = max_idle
        self.name = name
        self.max_size = max_size
        self._cond = threading.Condition()
        self._idle: list[tuple[S, float]] = []
        self._in_use = 0
        self._pid = os.getpid()
        self._closed = False
        #: Sessions created over the pool's life (tests use it to check reuse).
        self.created = 0
        _POOLS.add(self)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<SessionPool {self.name} in use {self._in_use}, idle {len(self._idle)}, max {self.max_size}>"

    @contextlib.contextmanager
    def session(self) -> Iterator[S]:
        """Borrow a session for the ``with`` block; it goes back, or is discarded on error."""
        session = self.acquire()
        try:
            yield session
        except BaseException as exc:
            if self._reusable(exc):
                self.release(session)
            else:
                self.discard(session)
            raise
        self.release(session)

    def reusable(self, exc: BaseException) -> bool:
        """Whether a session that raised ``exc`` may be given back (the pool's ``reusable`` rule)."""
        return self._reusable(exc)

    def acquire(self) -> S:
        """A session of one's own: an idle one, a new one, or the next one released."""
        while True:
            stale: list[S] = []
            candidate: tuple[S, float] | None = None
            with self._cond:
                self._after_fork()
                if self._closed:
                    raise RuntimeError(f"{self.name}: the session pool is closed")
                now = time.monotonic()
                while self._idle:
                    session, since = self._idle.pop()
                    if now - since > self.max_idle:
                        stale.append(session)
                        continue
                    candidate = (session, since)
                    break
                if candidate is not None or self._in_use + len(self._idle) < self.max_size:
                    self._in_use += 1
                else:
                    self._cond.wait()
                    continue
            for session in stale:
                self._close_quietly(session)
            if candidate is not None:
                session, since = candidate
                if self._alive is None or time.monotonic() - since <= self.check_after:
                    return session
                if self._check(session):
                    return session
                self._close_quietly(session)
                self._give_back_slot()
                continue
            try:
                session = self._make()
            except BaseException as exc:
                if self._lower_limit(exc):
                    continue
                self._give_back_slot()
                raise
            with self._cond:
                self.created += 1
            return session

    def release(self, session: S) -> None:
        """Hand a healthy session back for reuse."""
        with self._cond:
            if self._after_fork():
                return
            self._in_use -= 1
            keep = not self._closed and self._in_use + len(self._idle) < self.max_size
            if keep:
                self._idle.append((session, time.monotonic()))
            self._cond.notify()
        if not keep:
            self._close_quietly(session)

    def discard(self, session: S) -> None:
        """Close a session that may be broken and free its slot."""
        with self._cond:
            if self._after_fork():
                return
        self._close_quietly(session)
        self._give_back_slot()

    def close_idle(self) -> None:
        """Close the idle sessions; the pool stays usable and opens new ones on demand."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for session, _ in idle:
            self._close_quietly(session)

    def close(self) -> None:
        """Close the idle sessions and refuse new ones; sessions in use are closed when released."""
        with self._cond:
            self._closed = True
        self.close_idle()

    # -- internals -------------------------------------------------------------------

    def _after_fork(self) -> bool:
        """In a forked child, forget the parent's sessions (never close them). Hold the lock."""
        if self._pid == os.getpid():
            return False
        self._pid = os.getpid()
        self._idle = []
        self._in_use = 0
        return True

    def _make(self) -> S:
        """A new session; a refused one is asked for again once, after a pause.

        A server counts the connections it is still closing (vsftpd reaps its refused
        children asynchronously, and a port probe counts too), so one refusal may say
        more about its bookkeeping than about its limit.
        """
        try:
            return self._create()
        except BaseException as exc:
            if not self._refused(exc):
                raise
        time.sleep(self.refusal_pause)
        return self._create()

    def _give_back_slot(self) -> None:
        with self._cond:
            self._in_use -= 1
            self._cond.notify()

    def _lower_limit(self, exc: BaseException) -> bool:
        """After a refused ``create``: wait for a held session if there is one."""
        if not self._refused(exc):
            return False
        with self._cond:
            held = self._in_use - 1 + len(self._idle)  # minus the slot that failed
            if held < 1:
                return False
            if held < self.max_size:
                log.info("%s: the server refused session %d (%s); using at most %d", self.name,
                         held + 1, exc, held)  # fmt: skip
                self.max_size = held
            self._in_use -= 1
            self._cond.notify()
            return True

    def _check(self, session: S) -> bool:
        assert self._alive is not None
        try:
            return self._alive(session)
        except Exception:  # noqa: BLE001 - a failing health check means "not alive"
            return False

    def _close_quietly(self, session: S) -> None:
        try:
            self._close(session)
        except Exception as exc:  # noqa: BLE001 - closing a dead session may fail any way
            log.debug("%s: closing a session failed: %s", self.name, exc)


def close_all() -> None:
    """Close the idle sessions of every pool in this process; the pools stay usable.

    Servers get a goodbye (QUIT, SSH disconnect) instead of a dropped connection:
    call it before stopping a server this process is still connected to.
    """
    for pool in list(_POOLS):
        pool.close_idle()


@atexit.register
def _close_at_exit() -> None:
    for pool in list(_POOLS):
        pool.close()
