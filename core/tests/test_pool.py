"""SessionPool: bounded, reused, health-checked, shrinking when the server refuses sessions."""

from __future__ import annotations

import itertools
import os
import threading
import time

import pytest

from mlartifacts.pool import SessionPool, close_all


class Session:
    numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(self.numbers)
        self.closed = False


class Refused(Exception):
    pass


def make_pool(**kwargs: object) -> tuple[SessionPool[Session], list[Session]]:
    made: list[Session] = []

    def create() -> Session:
        session = Session()
        made.append(session)
        return session

    def close(session: Session) -> None:
        session.closed = True

    return SessionPool(create, close=close, **kwargs), made  # type: ignore[arg-type]


def test_sessions_are_reused() -> None:
    pool, made = make_pool(max_size=4)
    for _ in range(10):
        with pool.session() as session:
            assert not session.closed
    assert len(made) == pool.created == 1


def test_never_more_than_max_size_at_once() -> None:
    pool, made = make_pool(max_size=3)
    active, peak, lock = 0, 0, threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with pool.session():
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
    assert len(made) == 3


def test_error_discards_unless_reusable() -> None:
    pool, made = make_pool(max_size=2, reusable=lambda exc: isinstance(exc, KeyError))
    with pytest.raises(KeyError), pool.session():
        raise KeyError("no such file: the session is fine")
    with pytest.raises(ConnectionResetError), pool.session() as broken:
        raise ConnectionResetError("the session is gone")
    assert broken.closed
    with pool.session() as session:
        assert session is not broken
    assert len(made) == 2


def test_idle_session_is_checked_then_replaced() -> None:
    pool, _ = make_pool(max_size=2, alive=lambda s: False, check_after=0.0)
    with pool.session() as first:
        pass
    time.sleep(0.01)
    with pool.session() as second:
        assert second is not first
    assert first.closed


def test_sessions_idle_too_long_are_closed() -> None:
    pool, _ = make_pool(max_size=2, max_idle=0.0)
    with pool.session() as first:
        pass
    time.sleep(0.01)
    with pool.session() as second:
        assert second is not first
    assert first.closed


def test_refusal_lowers_the_limit_to_what_is_held() -> None:
    created = 0

    def create() -> Session:
        nonlocal created
        if created >= 2:
            raise Refused("421 too many connections")
        created += 1
        return Session()

    pool = SessionPool(create, max_size=5, refused=lambda exc: isinstance(exc, Refused))
    first, second = pool.acquire(), pool.acquire()
    released = threading.Timer(0.05, pool.release, [first])
    released.start()
    third = pool.acquire()  # refused by the "server": waits for the one released
    assert third is first
    assert pool.max_size == 2
    pool.release(second)
    pool.release(third)


def test_a_passing_refusal_does_not_lower_the_limit() -> None:
    """A server still counting connections it is closing refuses once: asked again, it accepts."""
    refusals = iter([Refused("421 too many connections")])

    def create() -> Session:
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal
        return Session()

    pool = SessionPool(create, max_size=3, refused=lambda exc: isinstance(exc, Refused))
    pool.refusal_pause = 0.01
    held = [pool.acquire(), pool.acquire(), pool.acquire()]
    assert pool.max_size == 3
    for session in held:
        pool.release(session)


def test_refusal_with_nothing_held_raises() -> None:
    def create() -> Session:
        raise Refused("421 too many connections")

    pool = SessionPool(create, max_size=2, refused=lambda exc: isinstance(exc, Refused))
    with pytest.raises(Refused):
        pool.acquire()
    with pytest.raises(Refused):  # the slot was given back
        pool.acquire()


def test_close_closes_idle_and_refuses_more() -> None:
    pool, made = make_pool(max_size=2)
    with pool.session():
        pass
    pool.close()
    assert made[0].closed
    with pytest.raises(RuntimeError, match="closed"):
        pool.acquire()


def test_close_all_closes_idle_sessions_and_pools_stay_usable() -> None:
    pool, made = make_pool(max_size=2)
    with pool.session(), pool.session():
        pass
    busy = pool.acquire()  # in use: not closed under its borrower
    close_all()
    assert [s.closed for s in made] == [busy is not made[0], busy is not made[1]]
    pool.release(busy)
    with pool.session() as session:
        assert not session.closed
    assert not busy.closed


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_forgets_parent_sessions_without_closing_them() -> None:
    pool, made = make_pool(max_size=2)
    with pool.session():
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must make its own session and leave the parent's alone
        try:
            with pool.session() as session:
                ok = session is not made[0] and not made[0].closed
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    with pool.session() as session:
        assert session is made[0]
