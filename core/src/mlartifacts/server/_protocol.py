"""uvicorn's httptools protocol with limits on the request head: size, header count and time.

uvicorn accepts request lines and headers of any size, any number of headers, and
waits forever for a head that trickles in (slowloris). Clients of this service send
heads of a few KiB, so the server refuses the rest early:

- request line plus headers over :data:`MAX_HEAD_BYTES`: 431 (414 for the line alone);
- more than :data:`MAX_HEADERS` headers: 431;
- a head not complete :data:`head timeout <HEAD_TIMEOUT>` seconds after the
  connection opened (or after the previous response): 408, connection closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import env_float

__all__ = ["HEAD_TIMEOUT", "MAX_HEADERS", "MAX_HEAD_BYTES", "LimitedHttpToolsProtocol"]

#: Largest request line plus headers. Artifact paths are at most 4 KiB (12 KiB
#: percent-encoded), an Authorization header at most 8 KiB.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
#: Seconds a client has to send a request's head (``MLARTIFACTS_SERVER_HEADER_TIMEOUT``).
HEAD_TIMEOUT = 20.0

_WRITE_BUFFER = 4 * 1024 * 1024
_REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class _HeadRefused(Exception):
    """Raised inside a parser callback to stop parsing; the status goes out instead of uvicorn's 400."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """The httptools protocol, refusing oversized, overlong and slow request heads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_timeout = env_float("MLARTIFACTS_SERVER_HEADER_TIMEOUT", HEAD_TIMEOUT) or HEAD_TIMEOUT

    # -- the head's clock ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Let a response queue a few chunks before the app waits for the socket to drain
        # (asyncio's default is 64 KiB): the loop then fetches the next chunk while the
        # kernel sends, instead of after.
        transport.set_write_buffer_limits(high=_WRITE_BUFFER)
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_head_clock()  # the next request on this connection gets the same time

    def _start_head_clock(self) -> None:
        self._stop_head_clock()
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            # Idle between requests, or a head still trickling in.
            self._respond(408, f"the request head did not arrive within {self._head_timeout:g} seconds")

    # -- the head's size -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 414, "the request line is too long")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 431, "the request headers are too large")
        if len(self.headers) >= MAX_HEADERS:
            self._refuse(431, f"more than {MAX_HEADERS} request headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_clock()
        super().on_headers_complete()

    def _count(self, size: int, status: int, message: str) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(status, f"{message} (more than {MAX_HEAD_BYTES} bytes)")

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _HeadRefused(message)  # the parser stops; uvicorn then calls send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._respond(*self._refusal)

    def _respond(self, status: int, message: str) -> None:
        self._stop_head_clock()
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()
