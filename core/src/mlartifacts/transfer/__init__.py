"""The transfer engine: concurrency, multipart, ranged reads, retries, timeouts, progress."""

from ._deadline import time_left
from ._engine import TransferEngine
from ._progress import NullProgress, Progress

__all__ = ["NullProgress", "Progress", "TransferEngine", "time_left"]
