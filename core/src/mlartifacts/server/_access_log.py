"""One access-log line per request (text or JSON), and the request's metrics when they are exposed.

Every request gets an id: the client's ``X-Request-Id`` when it is short and
printable, a fresh one otherwise; it is echoed in the response and logged, so an
operator can match a client's report to a log line.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._metrics import Metrics

__all__ = ["AccessLogMiddleware", "RouteNames"]

log = logging.getLogger("mlartifacts.server.access")

_UNMATCHED = "<unmatched>"


class RouteNames:
    """The route template a request matches (``/api/2.0/.../artifacts/{path:anypath}``), never its path.

    Metrics are labelled by template: one label value per route, however many
    artifact paths clients ask for.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = [r for r in routes if isinstance(r, Route)]

    def __call__(self, scope: Scope) -> str:
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(route.path)
            if match == Match.PARTIAL and partial is None:
                partial = str(route.path)  # right path, wrong method: answered 405
        return partial or _UNMATCHED


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            if 0 < len(value) <= 128 and all(0x21 <= b < 0x7F for b in value):
                return bytes(value).decode("ascii")
            break
    return uuid.uuid4().hex


class AccessLogMiddleware:
    """Logs each request once it is answered, and records it in :class:`Metrics` when given."""

    def __init__(
        self,
        app: ASGIApp,
        routes: RouteNames | None = None,
        *,
        json_format: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.routes = routes or RouteNames(())
        self.json_format = json_format
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        route = self.routes(scope)
        state: dict[str, Any] = {"status": 0, "sent": 0, "received": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
            return message

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                state["sent"] += len(message.get("body", b""))
            await send(message)

        transfer = self.metrics.transfer(scope["method"], route) if self.metrics else None
        try:
            if transfer is not None:
                with transfer:
                    await self.app(scope, counting_receive, logging_send)
            else:
                await self.app(scope, counting_receive, logging_send)
        finally:
            duration = time.perf_counter() - started
            status = state["status"] or 500
            if self.metrics is not None:
                self.metrics.request(
                    scope["method"], route, status, duration, state["received"], state["sent"]
                )
            self._log(scope, request_id, route, status, state, duration)

    def _log(
        self, scope: Scope, request_id: str, route: str, status: int, state: dict[str, Any], duration: float
    ) -> None:
        client = scope.get("client") or ("-", 0)
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1") + (
            f"?{query}" if query else ""
        )
        if self.json_format:
            line = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "request_id": request_id,
                "client": client[0],
                "user": scope.get("user"),
                "method": scope["method"],
                "route": route,
                "path": target,
                "status": status,
                "bytes_received": state["received"],
                "bytes_sent": state["sent"],
                "duration": round(duration, 6),
            }
            log.info("%s", json.dumps(line, ensure_ascii=False))
            return
        log.info(
            '%s %s "%s %s HTTP/%s" %d %d %.3fs %s',
            client[0],
            scope.get("user", "-"),
            scope["method"],
            target,
            scope.get("http_version", "1.1"),
            status,
            state["sent"],
            duration,
            request_id,
        )
