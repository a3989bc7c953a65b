"""Moving bytes between the event loop and the engine's worker threads, and HTTP ranges."""

from __future__ import annotations

import contextlib
import re
from collections import deque
from typing import AsyncIterator, Callable, Iterator, Mapping, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Send

from ..errors import TransferError
from ._errors import ApiError

__all__ = [
    "SMALL_BODY",
    "IncompleteBody",
    "ReadAheadResponse",
    "RequestBody",
    "parse_range",
    "refuse_transfer_codings",
]

_BATCH = 1024 * 1024  # hand the engine ~1 MiB at a time: one event-loop hop per MiB, not per TCP read
#: Bodies up to this size are held whole (no more than one streamed batch) and cross to
#: a worker thread once, instead of once per batch plus once for the end.
SMALL_BODY = _BATCH
T = TypeVar("T")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Digits past this many exceed any object's size; int() would refuse some (its 4,300-digit limit).
_MAX_DIGITS = 30


class UnsupportedCoding(ApiError):
    """A request body in a transfer coding other than chunked (e.g. gzip)."""


def refuse_transfer_codings(request: Request) -> None:
    """Refuse a body sent in a transfer coding the server would store undecoded (``gzip, chunked``)."""
    codings = [c.strip().lower() for c in request.headers.get("transfer-encoding", "").split(",")]
    unsupported = [c for c in codings if c and c != "chunked"]
    if unsupported:
        raise UnsupportedCoding(
            "INVALID_PARAMETER_VALUE",
            f"Transfer-Encoding {', '.join(unsupported)!r} is not supported: send the bytes as they "
            "are (chunked or with a Content-Length)",
        )


class IncompleteBody(TransferError):
    """The request body ended before its Content-Length."""


class _End:
    """The end of a request body, as queued for the consuming thread."""


_END = _End()
#: Batches (~1 MiB each) read ahead of the consuming thread: the event loop keeps
#: receiving while the thread writes, so the network and the storage work at once.
_READ_AHEAD = 8


class RequestBody:
    """A request body as a sync iterator of chunks, for a worker thread.

    :meth:`run` starts a pump on the event loop that reads the body into a bounded
    queue of ~1 MiB batches (:data:`_READ_AHEAD` of them) while the thread consumes
    them, so receiving and writing overlap; the thread crosses to the loop once per
    batch (or fewer, taking every batch already queued), never per TCP read, and
    never touches the connection itself. If the client disconnects, the
    disconnection is raised in the consuming thread, and the write it feeds is
    abandoned (nothing becomes visible). A body shorter than its Content-Length
    fails the same way.
    """

    def __init__(self, request: Request, expected: int | None) -> None:
        self._request = request
        self.expected = expected
        self.received = 0
        self._ended = False
        self._pending: deque[bytes] = deque()
        self._send: MemoryObjectSendStream[object] | None = None
        self._receive: MemoryObjectReceiveStream[object] | None = None

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` on a worker thread, fed by the pump; the pump stops when it returns."""
        failure: Exception | None = None
        self._send, self._receive = anyio.create_memory_object_stream[object](_READ_AHEAD)
        with self._send, self._receive:
            async with anyio.create_task_group() as group:
                group.start_soon(self._pump, self._send)
                try:
                    result = await anyio.to_thread.run_sync(work, *args)
                except Exception as exc:  # noqa: BLE001 - raised below, not wrapped in an exception group
                    failure = exc
                finally:
                    group.cancel_scope.cancel()
                    self._receive.close()
        if failure is not None:
            raise failure
        return result

    async def _pump(self, send: MemoryObjectSendStream[object]) -> None:
        batch: list[bytes] = []
        size = 0
        try:
            async for chunk in self._request.stream():
                if chunk:
                    batch.append(chunk)
                    size += len(chunk)
                if size >= _BATCH:
                    await send.send(batch)
                    batch, size = [], 0
            if batch:
                await send.send(batch)
            await send.send(_END)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the consumer has stopped reading: nothing more to do
        except Exception as exc:  # noqa: BLE001 - a disconnection, raised in the consuming thread
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)

    async def _take(self) -> list[object]:
        receive = self._receive
        assert receive is not None, "RequestBody is read through run()"
        items = [await receive.receive()]
        while True:
            try:
                items.append(receive.receive_nowait())
            except anyio.WouldBlock:
                return items

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        while not self._pending:
            if self._ended:
                raise StopIteration
            for item in anyio.from_thread.run(self._take):
                if isinstance(item, list):
                    self._pending.extend(item)
                elif isinstance(item, BaseException):
                    self._ended = True
                    raise item
                else:
                    self._ended = True
                    total = self.received + sum(map(len, self._pending))
                    if self.expected is not None and total != self.expected:
                        raise IncompleteBody(
                            f"the request body has {total} bytes, its Content-Length {self.expected}"
                        )
        chunk = self._pending.popleft()
        self.received += len(chunk)
        return chunk


class ReadAheadResponse(StreamingResponse):
    """A streamed response from a sync iterator, read ahead on a worker thread.

    Starlette would fetch each chunk with its own thread hop and only then send it,
    so the storage and the network took turns. Here one worker thread reads ahead
    (up to :data:`_READ_AHEAD` chunks) while the event loop sends, and the iterator
    is closed (its file or connection released) however the response ends.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(_nothing(), status_code, headers, media_type)
        self._chunks = chunks

    def _produce(self, sender: MemoryObjectSendStream[object]) -> None:
        try:
            for chunk in self._chunks:
                anyio.from_thread.run(sender.send, chunk)
            anyio.from_thread.run(sender.send, _END)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the response ended early (the client went away): stop reading
        except Exception as exc:  # noqa: BLE001 - raised on the event loop, where the response fails
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                anyio.from_thread.run(sender.send, exc)
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        sender, receiver = anyio.create_memory_object_stream[object](_READ_AHEAD)
        failure: Exception | None = None
        with sender, receiver:
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.to_thread.run_sync, self._produce, sender)
                try:
                    while True:
                        item = await receiver.receive()
                        if isinstance(item, Exception):
                            raise item
                        if item is _END:
                            break
                        await send({"type": "http.response.body", "body": item, "more_body": True})
                except Exception as exc:  # noqa: BLE001 - raised below, not wrapped in an exception group
                    failure = exc
                finally:
                    receiver.close()  # the producer's next send fails, and it stops
        if failure is not None:
            raise failure
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _nothing() -> AsyncIterator[bytes]:
    empty: tuple[bytes, ...] = ()
    for chunk in empty:  # an async generator that yields nothing (the body is sent by stream_response)
        yield chunk


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """A single ``Range: bytes=...`` header as (start, length); None to send everything.

    Returns ``"unsatisfiable"`` for a range wholly past the end (416). Multiple
    ranges and malformed headers are ignored, which RFC 9110 allows.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = _number(match.group(1)), _number(match.group(2))
    if size == 0:
        return "unsatisfiable"  # no byte of an empty file can be selected (RFC 9110 14.1.1)
    if first is None:  # suffix: the last N bytes
        assert last is not None
        if last == 0:
            return "unsatisfiable"
        start = max(0, size - last)
        return start, size - start
    start = first
    if start >= size:
        return "unsatisfiable"
    end = min(last, size - 1) if last is not None else size - 1
    if end < start:
        return None
    return start, end - start + 1


def _number(digits: str) -> int | None:
    if not digits:
        return None
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS
