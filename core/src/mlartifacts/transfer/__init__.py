"""The transfer engine: concurrency, multipart, ranged reads, retries, timeouts, progress, digests."""

from ._deadline import time_left
from ._digest import from_base64, mismatch, sha256_hex, to_base64, valid_hex
from ._engine import TransferEngine
from ._progress import NullProgress, Progress

__all__ = [
    "NullProgress",
    "Progress",
    "TransferEngine",
    "from_base64",
    "mismatch",
    "sha256_hex",
    "time_left",
    "to_base64",
    "valid_hex",
]
