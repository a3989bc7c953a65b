"""Batches of small files, as one tar stream each way (our server only)."""

from __future__ import annotations

import io
from typing import IO, Any, Iterable, Iterator, Sequence
from urllib.parse import quote

from .._tar import read_members, reader, write_members
from ..config import MAX_BATCH_FILE_SIZE
from ..errors import ArtifactError, BackendError, IntegrityError
from ..hookspecs import hookimpl
from ..transfer._digest import sha256_hex
from ._base import CHUNK, ClientBase, Root
from ._http import transport_error

__all__ = ["BatchTransfers"]

_TAR = "application/x-tar"


class BatchTransfers(ClientBase):
    """Hook implementations of the batch capability, through the server's ``batch`` routes."""

    @hookimpl
    def upload_batch(self, root: Root, path: str, files: Iterable[tuple[str, bytes]]) -> None:
        full = root.http.full(path)
        sent = 0
        failure: list[BaseException] = []  # the caller's own error, whatever urllib3 wraps it in

        def members() -> Iterator[tuple[str, int, IO[bytes], str]]:
            nonlocal sent
            iterator = iter(files)
            while True:
                try:
                    name, data = next(iterator)
                except StopIteration:
                    return
                except BaseException as exc:
                    failure.append(exc)
                    raise
                sent += 1
                yield name, len(data), io.BytesIO(data), sha256_hex(data)  # checked by the server

        url = f"{root.http.api}/batch/upload/{quote(full)}"
        what = f"upload a batch to {full or '/'}"
        try:
            response = self._request(
                root, "POST", url, what, data=write_members(members()), headers={"Content-Type": _TAR}
            )
        except ArtifactError:
            if failure:
                raise failure[0] from None
            raise
        body = response.json()
        stored = body.get("files") if isinstance(body, dict) else None
        if stored != sent:
            raise BackendError(f"{what}: sent {sent} files, the server stored {stored}")

    @hookimpl
    def download_batch(self, root: Root, path: str, names: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        full = root.http.full(path)
        what = f"download a batch from {full or '/'}"
        url = f"{root.http.api}/batch/download/{quote(full)}"
        response = self._request(root, "POST", url, what, json_body={"paths": list(names)}, stream=True)
        return self._members(response, what)

    @staticmethod
    def _members(response: Any, what: str) -> Iterator[tuple[str, bytes]]:
        with response:
            try:
                for name, size, data, announced in read_members(reader(response.iter_content(CHUNK))):
                    if size > MAX_BATCH_FILE_SIZE:
                        raise BackendError(f"{what}: the server sent {name!r} of {size} bytes, too large")
                    content = data.read()
                    if announced is not None and sha256_hex(content) != announced:
                        raise IntegrityError(
                            f"{what}: {name!r} does not match the SHA-256 the server sent ({announced})"
                        )
                    yield name, content
            except ArtifactError:
                raise
            except Exception as exc:
                raise transport_error(exc, what) from exc
