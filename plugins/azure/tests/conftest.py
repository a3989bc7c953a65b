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

import base64
import datetime as dt
import http.server
import ipaddress
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

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


@dataclass(frozen=True)
class SecureAzurite:
    """Azurite over HTTPS with OAuth (bearer tokens) on, its certificate, and a token endpoint."""

    endpoint: str  # https://127.0.0.1:PORT/devstoreaccount1
    cert: str
    tokens: Any  # TokenEndpoint
    key: str = KEY

    def uri(self, path: str = "") -> str:
        base = f"wasbs://{CONTAINER}@{HOST}"
        return f"{base}/{path}" if path else base


@pytest.fixture(scope="session")
def secure_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureAzurite]:
    from azure.storage.blob import BlobServiceClient

    base = tmp_path_factory.mktemp("azurite-https")
    cert, key = self_signed(base)
    port = free_port()
    command = azurite_command(port, base / "data", "--oauth", "basic", "--cert", str(cert), "--key", str(key))
    tokens = serve_tokens()
    with ServerProcess(command, base / "azurite.log") as proc:
        wait_for(tcp_open(port), 60, proc=proc, what="Azurite (HTTPS)")
        endpoint = f"https://127.0.0.1:{port}/{ACCOUNT}"
        admin = BlobServiceClient(
            endpoint, credential={"account_name": ACCOUNT, "account_key": KEY}, connection_verify=str(cert)
        )
        admin.create_container(CONTAINER)
        try:
            yield SecureAzurite(endpoint, str(cert), next(tokens))
        finally:
            tokens.close()


@pytest.fixture
def identity_env(secure_azurite: SecureAzurite, clean_env: pytest.MonkeyPatch) -> SecureAzurite:
    """DefaultAzureCredential through its managed-identity route, against the HTTPS Azurite."""
    clean_env.setenv("MLARTIFACTS_AZURE_BLOB_ENDPOINT", secure_azurite.endpoint)
    clean_env.setenv("REQUESTS_CA_BUNDLE", secure_azurite.cert)
    clean_env.setenv("IDENTITY_ENDPOINT", secure_azurite.tokens.url("good"))
    clean_env.setenv("IDENTITY_HEADER", HEADER)
    return secure_azurite


# -- DefaultAzureCredential: a self-signed certificate and a managed-identity token endpoint ----
#
# The endpoint speaks the App Service managed-identity protocol that azure-identity
# uses when IDENTITY_ENDPOINT and IDENTITY_HEADER are set. Its tokens are unsigned
# JWTs: Azurite checks their audience, issuer and expiry, not signatures. The first
# path segment picks what it hands out (/good/token, /wrong-audience/token,
# /expired/token), so each mode has its own IDENTITY_ENDPOINT, and so its own
# credential (the plugin caches clients per identity environment).

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # any GUID: Azurite only reads it back
OBJECT_ID = "23657296-5cd5-45b0-a809-d972a7f4dfe1"
HEADER = "test-identity-header"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (subjectAltName IP) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt(audience: str, expires: float) -> str:
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now - 60,
        "nbf": now - 60,
        "exp": int(expires),
        "oid": OBJECT_ID,
        "tid": TENANT,
        "sub": OBJECT_ID,
        "appid": OBJECT_ID,
    }
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"


@dataclass
class TokenEndpoint:
    """The running endpoint: its base URL and the requests it answered."""

    base: str
    requests: list[dict[str, str]] = field(default_factory=list)

    def url(self, mode: str = "good") -> str:
        return f"{self.base}/{mode}/token"


def serve_tokens() -> Iterator[TokenEndpoint]:
    """Run the endpoint on 127.0.0.1 until the generator is closed."""
    endpoint = TokenEndpoint("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            mode = url.path.strip("/").split("/")[0]
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            endpoint.requests.append({"mode": mode, **query})
            if self.headers.get("X-IDENTITY-HEADER") != HEADER:
                self._answer(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
                return
            resource = query.get("resource", "")
            now = time.time()
            audience = "https://management.azure.com" if mode == "wrong-audience" else resource.rstrip("/")
            # An expired token that the endpoint says is fresh: only the storage notices.
            token = jwt(audience, now - 600 if mode == "expired" else now + 3600)
            self._answer(
                200,
                {
                    "access_token": token,
                    "expires_on": str(int(now + 3600)),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": OBJECT_ID,
                },
            )

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
