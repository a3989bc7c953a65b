"""The client's TLS settings against a real HTTPS service (self-signed CA, then mutual TLS)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import BackendError
from mlartifacts.server import ServerConfig, create_app

from .conftest import API, serve_app


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.cnf", "-out", f"{name}.pem", cwd=d)  # fmt: skip
    (d / "client-bundle.pem").write_text((d / "client.pem").read_text() + (d / "client.key").read_text())
    return d


QUICK = Settings(max_retries=0)


def test_server_certificate_checks(pki: Path, tmp_path: Path, client_env: pytest.MonkeyPatch) -> None:
    app = create_app(ServerConfig(artifacts_destination=str(tmp_path / "dest")))
    with serve_app(app, ssl_keyfile=str(pki / "server.key"), ssl_certfile=str(pki / "server.pem")) as url:
        uri = f"{url}{API}/tls"
        with ArtifactStore(uri, settings=QUICK) as store, pytest.raises(BackendError, match="TLS failed"):
            store.write_bytes("a.txt", b"x")
        client_env.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(pki / "ca.pem"))
        with ArtifactStore(uri, settings=QUICK) as store:
            store.write_bytes("a.txt", b"verified")
        client_env.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
        client_env.setenv("REQUESTS_CA_BUNDLE", str(pki / "ca.pem"))  # requests' own variable, too
        with ArtifactStore(uri, settings=QUICK) as store:
            assert store.read_bytes("a.txt") == b"verified"
        client_env.delenv("REQUESTS_CA_BUNDLE")
        client_env.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
        with ArtifactStore(uri, settings=QUICK) as store:
            assert store.read_bytes("a.txt") == b"verified"


def test_mutual_tls(pki: Path, tmp_path: Path, client_env: pytest.MonkeyPatch) -> None:
    app = create_app(ServerConfig(artifacts_destination=str(tmp_path / "dest")))
    tls = {
        "ssl_keyfile": str(pki / "server.key"),
        "ssl_certfile": str(pki / "server.pem"),
        "ssl_ca_certs": str(pki / "ca.pem"),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with serve_app(app, **tls) as url:
        client_env.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(pki / "ca.pem"))
        uri = f"{url}{API}/mtls"
        with ArtifactStore(uri, settings=QUICK) as store, pytest.raises(Exception):  # noqa: B017, PT011 - refused in the handshake
            store.write_bytes("a.txt", b"x")
        client_env.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(pki / "client-bundle.pem"))
        with ArtifactStore(uri, settings=QUICK) as store:
            store.write_bytes("a.txt", b"mutual")
            assert store.read_bytes("a.txt") == b"mutual"
