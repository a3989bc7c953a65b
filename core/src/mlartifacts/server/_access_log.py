"""One access-log line per request: client, user, request line, status, bytes, duration."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLogMiddleware"]

log = logging.getLogger("mlartifacts.server.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "sent": 0}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["sent"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            client = scope.get("client") or ("-", 0)
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope.get("raw_path", scope["path"].encode()).decode("latin-1") + (
                f"?{query}" if query else ""
            )
            log.info(
                '%s %s "%s %s HTTP/%s" %d %d %.3fs',
                client[0],
                scope.get("user", "-"),
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                state["status"] or 500,
                state["sent"],
                time.perf_counter() - started,
            )
