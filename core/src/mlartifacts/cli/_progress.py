"""Progress bars for the command line (tqdm), drawn only on a terminal."""

from __future__ import annotations

import sys
import threading

from ..config import Settings
from ..transfer import NullProgress, Progress

__all__ = ["progress_for"]


class TqdmProgress:
    """A :class:`Progress` listener drawing one byte-count bar on stderr."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._lock = threading.Lock()
        self._bar: object | None = None
        self._files = 0
        self._total_files = 0

    def begin(self, total_bytes: int | None, total_files: int) -> None:
        from tqdm import tqdm

        with self._lock:
            self._total_files = total_files
            self._bar = tqdm(
                total=total_bytes,
                desc=self._description,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=True,
                dynamic_ncols=True,
            )

    def update(self, nbytes: int) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.update(nbytes)  # type: ignore[attr-defined]

    def file_done(self, path: str) -> None:
        with self._lock:
            self._files += 1
            if self._bar is not None and self._total_files > 1:
                self._bar.set_postfix_str(f"{self._files}/{self._total_files} files", refresh=False)  # type: ignore[attr-defined]

    def end(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()  # type: ignore[attr-defined]
                self._bar = None


def progress_for(description: str, settings: Settings, quiet: bool) -> Progress:
    """Bars on an interactive terminal; silence when piped, quiet or disabled by the setting."""
    if quiet or not settings.progress_bar or not sys.stderr.isatty():
        return NullProgress()
    return TqdmProgress(description)
