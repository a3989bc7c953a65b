"""Our client of the service: the contract suite through the proxy, URI forms, auth and errors."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore
from mlartifacts.client._uri import resolve
from mlartifacts.errors import ConfigError, InvalidUri, NotFound, TransientError, Unauthenticated
from mlartifacts.testing.contract import (
    ArtifactStoreContract,
    Corrupt,
    flip_byte_in_place,
    random_bytes,
    read_tree,
    write_tree,
)

from .conftest import API, RunningServer


def on_the_servers_disk(server: RunningServer) -> Corrupt:
    """Flip a byte of the file the service keeps on its local disk (its digest left as it was)."""

    def flip(store: ArtifactStore, path: str) -> None:
        flip_byte_in_place(server.destination / store.backend.root.http.full(path))  # type: ignore[operator]

    return flip


class TestProxyClient(ArtifactStoreContract):
    """The whole contract, through `mlartifacts server` on local disk."""

    @pytest.fixture
    def corrupt(self, server: RunningServer) -> Corrupt:
        return on_the_servers_disk(server)

    @pytest.fixture
    def artifact_uri(self, server: RunningServer, client_env: pytest.MonkeyPatch) -> str:
        return f"{server.artifacts}/contract/{uuid.uuid4().hex}"

    @pytest.fixture
    def large_file_size(self) -> int:
        return 64 << 20


class TestMlflowArtifactsUri(ArtifactStoreContract):
    """The same through ``mlflow-artifacts:`` URIs resolved against MLFLOW_TRACKING_URI."""

    @pytest.fixture
    def corrupt(self, server: RunningServer) -> Corrupt:
        return on_the_servers_disk(server)

    @pytest.fixture
    def artifact_uri(self, server: RunningServer, client_env: pytest.MonkeyPatch) -> str:
        client_env.setenv("MLFLOW_TRACKING_URI", server.url)
        return f"mlflow-artifacts:/2/{uuid.uuid4().hex}/artifacts"

    @pytest.fixture
    def large_file_size(self) -> int:
        return 8 << 20  # the large case already runs through the http:// class


@pytest.mark.parametrize(
    ("uri", "tracking", "url"),
    [
        ("mlflow-artifacts:/1/abc/artifacts", "http://localhost:5000", "http://localhost:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts"),
        ("mlflow-artifacts://other:8080/1/abc/artifacts", "https://track:5000/prefix", "https://other:8080/prefix/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts"),
        ("mlflow-artifacts:/", "http://h:5000", "http://h:5000/api/2.0/mlflow-artifacts/artifacts"),
        ("mlflow-artifacts:/api/2.0/mlflow-artifacts/artifacts/x", "http://h:5000/p", "http://h:5000/api/2.0/mlflow-artifacts/artifacts/x"),
        ("http://h:1/api/2.0/mlflow-artifacts/artifacts/experiments/1", "", "http://h:1/api/2.0/mlflow-artifacts/artifacts/experiments/1"),
        ("https://h/p//api/2.0/mlflow-artifacts/artifacts//a//b/", "", "https://h/p/api/2.0/mlflow-artifacts/artifacts/a/b"),
    ],
)  # fmt: skip
def test_uri_resolution(uri: str, tracking: str, url: str) -> None:
    root = resolve(uri, tracking)
    assert root.url("artifacts") == url


@pytest.mark.parametrize(
    ("uri", "tracking", "message"),
    [
        ("mlflow-artifacts:/1/x", "", "MLFLOW_TRACKING_URI"),
        ("mlflow-artifacts:/1/x", "sqlite:///mlflow.db", "MLFLOW_TRACKING_URI"),
        ("mlflow-artifacts://1/abc", "http://h:5000", "not a host"),
        ("http://h:5000/some/other/path", "", "not an artifacts-service URI"),
        ("http://h:5000/api/2.0/mlflow-artifacts/artifacts/../x", "", "'..'"),
        ("http://h:5000/api/2.0/mlflow-artifacts/artifacts/x?versionId=3", "", "no query"),
    ],
)
def test_unusable_uris(uri: str, tracking: str, message: str) -> None:
    with pytest.raises(InvalidUri, match=message):
        resolve(uri, tracking)


def test_cli_through_the_service(
    server: RunningServer, client_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlartifacts.cli import run

    files = {"a.txt": b"a", "d/e/f.bin": random_bytes(70_000)}
    write_tree(tmp_path / "src", files)
    uri = f"{server.artifacts}/cli/{uuid.uuid4().hex}"
    assert run(["cp", "-r", str(tmp_path / "src"), uri]) == 0
    assert run(["cp", "-r", uri, str(tmp_path / "back")]) == 0
    assert read_tree(tmp_path / "back") == files
    assert run(["rm", "-r", f"{uri}/d"]) == 0
    assert run(["ls", "--json", uri]) == 0
    digest = "sha256:" + hashlib.sha256(b"a").hexdigest()  # recorded on upload, listed by the service
    assert json.loads(capsys.readouterr().out) == [
        {"path": "a.txt", "is_dir": False, "file_size": 1, "digest": digest}
    ]


def test_recursive_listing_pages_through_the_service(
    server: RunningServer, client_env: pytest.MonkeyPatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree larger than one page of the recursive listing is listed and downloaded whole."""
    from mlartifacts.client import _base

    monkeypatch.setattr(_base, "_PAGE", 3)
    files = {f"d{i % 3}/f{i}.txt": f"file {i}".encode() for i in range(11)}
    write_tree(tmp_path / "src", files)
    with ArtifactStore(f"{server.artifacts}/pages/{uuid.uuid4().hex}") as store:
        store.log_artifacts(str(tmp_path / "src"))
        listed = sorted(i.path for i in store.iter_files(""))
        store.download_artifacts("", str(tmp_path / "back"))
    assert listed == sorted(files)
    assert read_tree(tmp_path / "back") == files


def test_listing_from_a_hostile_server_is_sanitized(tmp_path: Path, client_env: pytest.MonkeyPatch) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def listing(request: object) -> JSONResponse:
        return JSONResponse({"files": [
            {"path": "../../etc/passwd", "is_dir": False, "file_size": 5},
            {"path": "ok.txt", "is_dir": False, "file_size": 2},
            {"path": "/abs", "is_dir": False, "file_size": 1},
        ]})  # fmt: skip

    from .conftest import serve_app

    with serve_app(Starlette(routes=[Route(API, listing)])) as url:
        store = ArtifactStore(f"{url}{API}/run")
        assert [f.path for f in store.list_artifacts()] == ["ok.txt"]


ROUTES = [
    ("GET", "/api/2.0/mlflow-artifacts/artifacts?path=x"),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/x/f.txt"),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/x/f.txt"),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/x/f.txt"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/create/x"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/x"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/abort/x"),
    ("GET", "/api/2.0/mlflow-artifacts/presigned/x/f.txt"),
    ("POST", "/api/2.0/mlflow-artifacts/batch/upload/x"),
    ("POST", "/api/2.0/mlflow-artifacts/batch/download/x"),
    ("GET", "/api/3.0/mlflow/server-info"),
    ("GET", "/ajax-api/2.0/mlflow-artifacts/artifacts?path=x"),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_every_route_refuses_anonymous_requests(auth_server: RunningServer, method: str, route: str) -> None:
    for auth in (None, ("alice", "wrong"), ("mallory", "wonderland")):
        response = requests.request(method, auth_server.url + route, auth=auth, json={}, timeout=10)
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    bad_token = requests.request(
        method, auth_server.url + route, headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert bad_token.status_code == 401
    assert requests.get(auth_server.url + "/health", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "wonderland"},
        {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "builder"},
        {"MLFLOW_TRACKING_TOKEN": "secret-token"},
    ],
)
def test_client_authenticates_from_the_environment(
    auth_server: RunningServer, client_env: pytest.MonkeyPatch, credentials: dict[str, str], tmp_path: Path
) -> None:
    for name, value in credentials.items():
        client_env.setenv(name, value)
    with ArtifactStore(f"{auth_server.artifacts}/authed") as store:
        store.write_bytes("f.txt", b"allowed")
        assert store.read_bytes("f.txt") == b"allowed"
        assert [f.path for f in store.list_artifacts()] == ["f.txt"]
        store.delete("f.txt")


def test_credentials_file(auth_server: RunningServer, client_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = alice\nmlflow_tracking_password = wonderland\n"
    )
    client_env.setenv("MLFLOW_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with ArtifactStore(f"{auth_server.artifacts}/file-creds") as store:
        store.write_bytes("g.txt", b"ok")
        assert store.read_bytes("g.txt") == b"ok"


def test_missing_credentials_are_a_clear_error(
    auth_server: RunningServer, client_env: pytest.MonkeyPatch
) -> None:
    with (
        ArtifactStore(f"{auth_server.artifacts}/denied") as store,
        pytest.raises(Unauthenticated, match=r"HTTP 401 UNAUTHENTICATED.*MLFLOW_TRACKING_USERNAME"),
    ):
        store.write_bytes("f.txt", b"x")


def test_tls_settings_conflict(client_env: pytest.MonkeyPatch) -> None:
    client_env.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    client_env.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/etc/ssl/certs/ca.pem")
    with pytest.raises(ConfigError, match="cannot both be set"):
        ArtifactStore("https://h/api/2.0/mlflow-artifacts/artifacts/x")


def test_unreachable_server_is_transient(client_env: pytest.MonkeyPatch) -> None:
    from mlartifacts import Settings
    from mlartifacts.testing.servers import free_port

    settings = Settings(max_retries=1, retry_backoff=0.01)
    with (
        ArtifactStore(f"http://127.0.0.1:{free_port()}{API}/x", settings=settings) as store,
        pytest.raises(TransientError, match="ConnectionError"),
    ):
        store.read_bytes("f")


def test_missing_artifact_is_not_found(
    server: RunningServer, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with ArtifactStore(f"{server.artifacts}/nothing-{uuid.uuid4().hex}") as store:
        with pytest.raises(NotFound):
            store.download_file("f.bin", str(tmp_path / "f.bin"))
        assert store.list_artifacts() == []
    assert list(tmp_path.iterdir()) == []
