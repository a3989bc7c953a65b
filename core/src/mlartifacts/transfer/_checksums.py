"""Digests for verifying downloads: :mod:`hashlib` names, plus ``crc32c`` (Google Cloud Storage's).

``crc32c`` comes from the ``google-crc32c`` package (a C implementation; every
install of google-cloud-storage has it), imported only when such a checksum is
verified. Without it the digest is not computed: a pure-Python CRC32C runs at a
few MB/s, which would make a large download crawl, and the size is still checked.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Protocol

__all__ = ["Hasher", "hasher", "hexdigest"]

log = logging.getLogger("mlartifacts.transfer")


class Hasher(Protocol):
    """The part of hashlib's interface verification uses."""

    def update(self, data: bytes, /) -> object: ...  # hashlib returns None, google-crc32c nothing useful

    def hexdigest(self) -> str | bytes: ...


def hasher(algorithm: str) -> Hasher | None:
    """A fresh digest for ``algorithm``, or None when it cannot be computed here."""
    name = algorithm.lower()
    if name == "crc32c":
        try:
            import google_crc32c
        except ImportError:
            log.debug("cannot verify crc32c checksums: the google-crc32c package is not installed")
            return None
        checksum: Hasher = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        return checksum
    if name in hashlib.algorithms_available:
        return hashlib.new(name)
    log.debug("cannot verify %s checksums here", algorithm)
    return None


def hexdigest(digest: Hasher) -> str:
    """The digest as lowercase hex text (google-crc32c gives bytes)."""
    value = digest.hexdigest()
    return (value.decode() if isinstance(value, bytes) else value).lower()
