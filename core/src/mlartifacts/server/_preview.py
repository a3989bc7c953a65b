"""``GET /mlflow-artifacts/preview/<file>``: a parquet file's schema and first rows, as JSON, for the browser.

Only when pyarrow is installed on the server (it is never required): otherwise the
answer is 501 with what to install. pyarrow reads the footer and the first row
group's pages through ranged reads of the store, so neither the file nor more than
the first batch is ever held whole.
"""

from __future__ import annotations

import io
from typing import IO, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..store import ArtifactStore
from ._errors import ApiError
from ._paths import request_path

__all__ = ["PREVIEW_ROWS", "preview"]

PREVIEW_ROWS = 100
_CELL = 200  # characters of one value shown


class _StoreFile(io.RawIOBase):
    """A read-only, seekable file over one artifact, each read a ranged read of the store."""

    def __init__(self, store: ArtifactStore, path: str, size: int) -> None:
        self.store = store
        self.path = path
        self.size = size
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, min(self.size, base + offset))
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self.position
        size = min(size, self.size - self.position)
        if size <= 0:
            return b""
        data = b"".join(self.store.read(self.path, self.position, size))
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _parquet(store: ArtifactStore, path: str) -> dict[str, Any]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise ApiError(
            "NOT_IMPLEMENTED", "parquet previews need pyarrow on the server (pip install pyarrow)"
        ) from None
    info = store.stat(path)
    if info.is_dir:
        raise ApiError("INVALID_PARAMETER_VALUE", f"'{path}' is a directory, not a file")
    try:
        # A RawIOBase is a binary file object to pyarrow; its stubs only name IO[Any].
        source: IO[bytes] = _StoreFile(store, path, info.file_size or 0)  # type: ignore[assignment]
        parquet = pq.ParquetFile(source)
        batch = next(parquet.iter_batches(batch_size=PREVIEW_ROWS), None)
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError...: the bytes are not parquet
        raise ApiError("INVALID_PARAMETER_VALUE", f"'{path}' is not a readable parquet file: {exc}") from exc
    schema = parquet.schema_arrow
    rows = [] if batch is None else [[_cell(v) for v in row.values()] for row in batch.to_pylist()]
    return {
        "format": "parquet",
        "num_rows": parquet.metadata.num_rows,
        "schema": [{"name": field.name, "type": str(field.type)} for field in schema],
        "rows": rows,
    }


async def preview(store: ArtifactStore, request: Request) -> Response:
    """The preview of one file: parquet only, for now."""
    path = request_path(request.path_params["path"], allow_empty=False)
    if not path.lower().endswith((".parquet", ".pq")):
        raise ApiError("INVALID_PARAMETER_VALUE", "previews are made of parquet files only")
    return JSONResponse(await anyio.to_thread.run_sync(_parquet, store, path))
