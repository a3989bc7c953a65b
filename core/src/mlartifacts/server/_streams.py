"""Moving bytes between the event loop and the engine's worker threads, and HTTP ranges."""

from __future__ import annotations

import re
from typing import AsyncIterator, Iterator

import anyio.from_thread
from starlette.requests import Request

from ..errors import TransferError
from ._errors import ApiError

__all__ = ["SMALL_BODY", "IncompleteBody", "RequestBody", "parse_range", "refuse_transfer_codings"]

_BATCH = 1024 * 1024  # hand the engine ~1 MiB at a time: one event-loop hop per MiB, not per TCP read
#: Bodies up to this size are held whole (no more than one streamed batch) and cross to
#: a worker thread once, instead of once per batch plus once for the end.
SMALL_BODY = _BATCH
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


class RequestBody:
    """A request body as a sync iterator of ~1 MiB chunks, for a worker thread.

    Each batch is read on the event loop (``anyio.from_thread.run``), so the
    thread never touches the connection itself. If the client disconnects, the
    disconnection is raised in the consuming thread, and the write it feeds is
    abandoned (nothing becomes visible). A body shorter than its Content-Length
    fails the same way.
    """

    def __init__(self, request: Request, expected: int | None) -> None:
        self._chunks: AsyncIterator[bytes] = request.stream().__aiter__()
        self.expected = expected
        self.received = 0
        self._ended = False

    async def _next_batch(self) -> tuple[bytes, bool]:
        batch = bytearray()
        while len(batch) < _BATCH:
            try:
                batch += await self._chunks.__anext__()
            except StopAsyncIteration:
                return bytes(batch), True
        return bytes(batch), False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._ended:
            raise StopIteration
        batch, self._ended = anyio.from_thread.run(self._next_batch)
        self.received += len(batch)
        if self._ended and self.expected is not None and self.received != self.expected:
            raise IncompleteBody(
                f"the request body has {self.received} bytes, its Content-Length {self.expected}"
            )
        if not batch:
            raise StopIteration
        return batch


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
