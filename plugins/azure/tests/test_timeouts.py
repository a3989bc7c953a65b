"""A silent Blob endpoint: every operation fails at the engine's deadline, and its requests give up too.

The connection string's ``BlobEndpoint`` points at a server that accepts connections
and never answers (a hung storage). Each operation fails within the deadline with a
TransferError naming the URI: the engine's OperationTimeout, or the request's own
timeout translated (raised from it) when that fires first. The transport's read
timeout (``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``, 600 s by default) and its 20 s
connect timeout are capped by the engine's ``Settings.timeout``, so an abandoned
request closes its connection at the deadline instead of ten minutes later.
Azurite checks that a store with the capped timeout still works normally.
"""

from __future__ import annotations

from typing import Callable

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import SilentEndpointTests

ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public, the same in every install).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = f"{ACCOUNT}.blob.core.windows.net"
TIMEOUT = SilentEndpointTests.TIMEOUT


class TestSilentEndpoint(SilentEndpointTests):
    @pytest.fixture
    def silent_uri(self, clean_env: pytest.MonkeyPatch) -> Callable[[int], str]:
        def uri(port: int) -> str:
            clean_env.setenv(
                "AZURE_STORAGE_CONNECTION_STRING",
                f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};",
            )
            return f"wasbs://silent@{HOST}/runs"

        return uri


def test_the_capped_timeout_leaves_a_live_server_working(unique_uri: str) -> None:
    with ArtifactStore(unique_uri, settings=SilentEndpointTests.timeout_settings()) as store:
        assert store.backend.root.config.timeout == TIMEOUT
        store.write_bytes("a.txt", b"alive")
        assert store.read_bytes("a.txt") == b"alive"
        assert [f.path for f in store.list_artifacts()] == ["a.txt"]
