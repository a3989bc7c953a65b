"""A real Azure Blob service for the session: Azurite (``azurite-blob``) on 127.0.0.1.

Azurite runs with telemetry off, its data in the session's temporary directory,
and is stopped by PID at the end. The tests reach it the ways users reach Azure:
a connection string, or an account key plus ``MLARTIFACTS_AZURE_BLOB_ENDPOINT``
(Azurite's one account is ``devstoreaccount1``, with a well-known key).

No credential source may leave the machine: at import, every ``AZURE_*``
variable of the developer's goes, ``DefaultAzureCredential`` is narrowed to its
production chain (environment, workload identity, managed identity: no Azure CLI
or other developer tools), and the managed identity's endpoint is a closed port on
127.0.0.1, so nothing ever probes the instance metadata address. Tests that need a
working managed identity start their own token endpoint (``test_identity.py``).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, tcp_open, wait_for

for _name in list(os.environ):
    if _name.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_")):
        del os.environ[_name]
os.environ["AZURE_TOKEN_CREDENTIALS"] = "prod"  # no Azure CLI, PowerShell, azd, VS Code, broker
os.environ["IDENTITY_ENDPOINT"] = "http://127.0.0.1:9/msi/token"  # discard port: refused at once
os.environ["IDENTITY_HEADER"] = "no-identity-here"

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "devstoreaccount1"
# Azurite's documented development key (public, the same in every install).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "mlartifacts-tests"
HOST = f"{ACCOUNT}.blob.core.windows.net"
# Variables the plugin (or azure-identity) reads, cleared before each test.
_PREFIXES = ("AZURE_STORAGE_", "MLARTIFACTS_", "MLFLOW_ARTIFACT_", "MLFLOW_TRACKING_", "REQUESTS_CA_BUNDLE")


@dataclass(frozen=True)
class Azurite:
    """How to reach the session's Azurite."""

    endpoint: str  # the Blob service URL, account included: http://127.0.0.1:PORT/devstoreaccount1
    account: str = ACCOUNT
    key: str = KEY
    container: str = CONTAINER

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};AccountKey={self.key};"
            f"BlobEndpoint={self.endpoint};"
        )

    def admin(self) -> Any:
        """A plain azure-storage-blob client (not the plugin's), to set up and inspect."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def uri(self, path: str = "", container: str | None = None) -> str:
        base = f"wasbs://{container or self.container}@{HOST}"
        return f"{base}/{path}" if path else base


def azurite_command(port: int, location: Path, *extra: str) -> list[str]:
    """The azurite-blob command line (skips the test when Azurite is not installed)."""
    exe = find_executable("azurite-blob", ROOT / "tools" / "npm" / "node_modules" / ".bin")
    if exe is None:
        pytest.skip("azurite-blob not found: scripts/install installs it (plugins/azure/ci/npm-packages)")
    return [
        exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
        "--skipApiVersionCheck", "--silent",
        "--disableTelemetry",  # Azurite >= 3.33 sends Application Insights telemetry by default
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    base = tmp_path_factory.mktemp("azurite")
    port = free_port()
    with ServerProcess(azurite_command(port, base / "data"), base / "azurite.log") as proc:
        wait_for(tcp_open(port), 60, proc=proc, what="Azurite")
        server = Azurite(f"http://127.0.0.1:{port}/{ACCOUNT}")
        server.admin().create_container(CONTAINER)
        yield server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with no Azure setting or credential of the developer's."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def cs_env(azurite: Azurite, clean_env: pytest.MonkeyPatch) -> Azurite:
    """Connection-string auth, as a user of Azurite sets it."""
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    return azurite


@pytest.fixture
def key_env(azurite: Azurite, clean_env: pytest.MonkeyPatch) -> Azurite:
    """Account-key auth, with the endpoint override pointing at Azurite."""
    clean_env.setenv("AZURE_STORAGE_ACCESS_KEY", azurite.key)
    clean_env.setenv("MLARTIFACTS_AZURE_BLOB_ENDPOINT", azurite.endpoint)
    return azurite


@pytest.fixture
def unique_uri(cs_env: Azurite) -> str:
    """A fresh, empty root in the test container."""
    return cs_env.uri(f"t/{uuid.uuid4().hex}")
