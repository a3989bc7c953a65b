"""JSON request bodies, read with a size cap and parsed without trusting their shape."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ._errors import ApiError

__all__ = ["MAX_JSON_BYTES", "read_json"]

#: Largest JSON body accepted. The largest legitimate one, ``mpu/complete`` for 10,000
#: parts that echo their presigned URLs, is about 10 MiB.
MAX_JSON_BYTES = 16 * 1024 * 1024


async def read_json(request: Request) -> Any:
    """The request's JSON body; 413 past :data:`MAX_JSON_BYTES`, 400 when it is not JSON."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise _too_large()
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        # RecursionError: nesting thousands deep is no request any client makes.
        raise ApiError("BAD_REQUEST", "Bad Request. The body is not valid JSON.") from None


def _too_large() -> ApiError:
    return ApiError("REQUEST_TOO_LARGE", f"the JSON body is larger than {MAX_JSON_BYTES} bytes")
