"""Contract tests of a hung storage: every operation fails at the engine's deadline, sockets included.

A :class:`~mlartifacts.testing.servers.SilentServer` accepts connections and never
answers. Each operation must fail within ``Settings.timeout`` (plus a margin) with a
``TransferError`` naming the URI (its credentials hidden): the engine's
``OperationTimeout``, or the plugin's own request/socket timeout translated (raised
``from`` it) when that fires first. A plugin caps its SDK's timeouts by
``Settings.timeout``, so the abandoned call closes its connection at the deadline too,
instead of holding it for the SDK's default minute or ten.

Subclass :class:`SilentEndpointTests` and provide ``silent_uri``: a fixture returning
a function from the silent server's port to a URI whose store talks to it (setting
whatever environment the plugin reads). ``ours`` picks out the plugin's own requests
where its SDK also makes background ones.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

import pytest

from .. import ArtifactStore, Settings
from .._redact import redact_uri
from ..errors import OperationTimeout, TransferError
from .servers import SilentServer

__all__ = ["SilentEndpointTests"]

_OPERATIONS: dict[str, Callable[[ArtifactStore, Path], object]] = {
    "upload": lambda store, tmp: store.upload_file(str(tmp / "up.bin"), "up.bin"),
    "download": lambda store, tmp: store.download_file("a.bin", str(tmp / "out" / "a.bin")),
    "stat": lambda store, tmp: store.stat("a.bin"),
    "list": lambda store, tmp: store.list_artifacts(""),
}


class SilentEndpointTests:
    """A storage that accepts connections and never answers fails every operation at the deadline."""

    #: The engine's deadline in these tests (seconds).
    TIMEOUT = 2.0
    #: A correctness bound on top of the deadline, not a speed figure.
    MARGIN = 4.0
    #: Bytes found in the plugin's own requests (empty: every connection is the plugin's).
    ours: bytes = b""

    @pytest.fixture
    def silent_uri(self) -> Callable[[int], str]:
        """Given the silent server's port, the URI of a store that talks to it."""
        raise NotImplementedError("provide a silent_uri fixture")

    @classmethod
    def timeout_settings(cls) -> Settings:
        """The environment's settings with the short deadline and quick retries."""
        return Settings.from_env().replace(timeout=cls.TIMEOUT, retry_backoff=0.1, retry_backoff_max=0.5)

    @pytest.mark.parametrize("operation", list(_OPERATIONS))
    def test_a_silent_endpoint_fails_at_the_deadline(
        self, silent_uri: Callable[[int], str], tmp_path: Path, operation: str
    ) -> None:
        (tmp_path / "up.bin").write_bytes(b"up" * 1000)
        with SilentServer() as server:
            uri = silent_uri(server.port)
            with ArtifactStore(uri, settings=self.timeout_settings()) as store:
                started = time.monotonic()
                with pytest.raises(TransferError, match=re.escape(redact_uri(uri))) as caught:
                    _OPERATIONS[operation](store, tmp_path)
                elapsed = time.monotonic() - started
            error = caught.value
            if not isinstance(error, OperationTimeout):  # the plugin's capped timeout fired first
                cause = error.__cause__
                assert isinstance(cause, TimeoutError) or "timed out" in str(cause).lower(), repr(error)
            assert elapsed < self.TIMEOUT + self.MARGIN, f"{operation} failed after {elapsed:.1f} s"
            assert any(self.ours in c.received for c in server.connections), "no request reached the server"
            late = server.open_after(self.TIMEOUT + self.MARGIN, sent=self.ours)
            assert late == [], f"{len(late)} connection(s) still waiting on the silent endpoint"
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
