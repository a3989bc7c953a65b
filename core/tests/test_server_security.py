"""Browsers: DNS rebinding (unknown Host headers) and cross-site writes (Origin, form content types).

A hostile page can make a visitor's browser send requests to a server on the
visitor's machine. Each test sends what such a browser would send, to the real
server in a subprocess, and checks nothing is served or written.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import API, RunningServer, start_cli_server

EVIL = "http://evil.example"


def _tar(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def run(server: RunningServer) -> str:
    return f"1/{uuid.uuid4().hex}/artifacts"


def _routes(server: RunningServer, run: str) -> list[tuple[str, str, dict[str, object]]]:
    base = f"{server.url}/api/2.0/mlflow-artifacts"
    return [
        ("GET", f"{base}/artifacts", {"params": {"path": run}}),
        ("GET", f"{base}/artifacts/{run}/a.txt", {}),
        ("PUT", f"{base}/artifacts/{run}/b.txt", {"data": b"x"}),
        ("DELETE", f"{base}/artifacts/{run}/a.txt", {}),
        ("POST", f"{base}/mpu/create/{run}", {"json": {"path": "f", "num_parts": 1}}),
        ("POST", f"{base}/batch/upload/{run}", {"data": _tar("c.txt", b"x")}),
        ("POST", f"{base}/batch/download/{run}", {"json": {"paths": ["a.txt"]}}),
        ("GET", f"{server.url}/api/3.0/mlflow/server-info", {}),
    ]


def test_an_unknown_host_is_refused_on_every_route(server: RunningServer, run: str) -> None:
    requests.put(f"{server.artifacts}/{run}/a.txt", data=b"kept", timeout=10)
    for method, url, kwargs in _routes(server, run):
        response = requests.request(
            method, url, headers={"Host": "rebound.evil.example"}, timeout=10, **kwargs
        )  # type: ignore[arg-type]
        assert response.status_code == 403, (method, url, response.status_code)
        assert "--allowed-hosts" in response.json()["message"]
    assert (server.destination / run / "a.txt").read_bytes() == b"kept"  # type: ignore[operator]
    assert not (server.destination / run / "b.txt").exists()  # type: ignore[operator]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "10.1.2.3", "192.168.0.7", "[::1]"])
def test_local_hosts_are_served_by_default(server: RunningServer, host: str) -> None:
    port = server.url.rsplit(":", 1)[1]
    response = requests.get(
        f"{server.url}/api/3.0/mlflow/server-info", headers={"Host": f"{host}:{port}"}, timeout=10
    )
    assert response.status_code == 200


def test_health_answers_any_host(server: RunningServer) -> None:
    # Load balancers probe with their own Host; /health reveals nothing.
    assert (
        requests.get(f"{server.url}/health", headers={"Host": "lb.internal"}, timeout=10).status_code == 200
    )


@pytest.mark.parametrize(
    "kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_cross_site_form_posts_write_nothing(server: RunningServer, run: str, kind: str) -> None:
    url = f"{server.url}/api/2.0/mlflow-artifacts/batch/upload/{run}"
    body = _tar("planted.txt", b"evil")
    cross = requests.post(url, data=body, headers={"Origin": EVIL, "Content-Type": kind}, timeout=10)
    assert cross.status_code == 403
    # Even without an Origin header (old browsers, privacy extensions) a form type is refused.
    same = requests.post(url, data=body, headers={"Content-Type": kind}, timeout=10)
    assert same.status_code == 415
    assert not (server.destination / run / "planted.txt").exists()  # type: ignore[operator]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
def test_cross_origin_writes_are_refused(server: RunningServer, run: str, method: str) -> None:
    requests.put(f"{server.artifacts}/{run}/a.txt", data=b"kept", timeout=10)
    url = f"{server.artifacts}/{run}/a.txt"
    if method == "POST":
        url = f"{server.url}/api/2.0/mlflow-artifacts/mpu/abort/{run}"
    response = requests.request(method, url, data=b"evil", headers={"Origin": EVIL}, timeout=10)
    assert response.status_code == 403
    assert (server.destination / run / "a.txt").read_bytes() == b"kept"  # type: ignore[operator]


def test_cross_origin_reads_get_no_cors_headers(server: RunningServer, run: str) -> None:
    requests.put(f"{server.artifacts}/{run}/a.txt", data=b"secret", timeout=10)
    response = requests.get(f"{server.artifacts}/{run}/a.txt", headers={"Origin": EVIL}, timeout=10)
    # Served (a browser keeps it from the page), but never with a header letting the page read it.
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_same_origin_and_local_origins_may_write(server: RunningServer, run: str) -> None:
    url = f"{server.artifacts}/{run}/a.txt"
    assert requests.put(url, data=b"1", headers={"Origin": server.url}, timeout=10).status_code == 200
    local = requests.put(url, data=b"2", headers={"Origin": "http://localhost:3000"}, timeout=10)
    assert local.status_code == 200
    assert local.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    preflight = requests.options(
        url,
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    refused = requests.options(
        url, headers={"Origin": EVIL, "Access-Control-Request-Method": "PUT"}, timeout=10
    )
    assert refused.status_code == 403


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[RunningServer]:
    proc = start_cli_server(
        tmp_path,
        "--allowed-hosts", "artifacts.example.com,*.corp.example",
        "--cors-allowed-origins", "https://notebook.example.com",
        env={"MLFLOW_SERVER_X_FRAME_OPTIONS": "DENY"},
    )  # fmt: skip
    try:
        yield RunningServer(f"http://127.0.0.1:{proc.port}", tmp_path / "artifacts", proc)  # type: ignore[attr-defined]
    finally:
        proc.stop()


def test_operators_choose_hosts_and_origins(configured: RunningServer) -> None:
    info = f"{configured.url}/api/3.0/mlflow/server-info"
    assert requests.get(info, headers={"Host": "artifacts.example.com"}, timeout=10).status_code == 200
    assert requests.get(info, headers={"Host": "a.corp.example:8080"}, timeout=10).status_code == 200
    # An explicit list replaces the defaults: even the loopback address is now refused.
    assert requests.get(info, timeout=10).status_code == 403
    url = f"{configured.url}{API}/x/a.txt"
    host = {"Host": "artifacts.example.com"}
    allowed = requests.put(
        url, data=b"1", headers={**host, "Origin": "https://notebook.example.com"}, timeout=10
    )
    assert (allowed.status_code, allowed.headers["X-Frame-Options"]) == (200, "DENY")
    local = requests.put(url, data=b"1", headers={**host, "Origin": "http://localhost:3000"}, timeout=10)
    assert local.status_code == 403


def test_the_checks_can_be_turned_off(tmp_path: Path) -> None:
    proc = start_cli_server(tmp_path, "--disable-security-middleware")
    try:
        url = f"http://127.0.0.1:{proc.port}{API}/x/a.txt"  # type: ignore[attr-defined]
        response = requests.put(url, data=b"1", headers={"Host": "any.example", "Origin": EVIL}, timeout=10)
        assert response.status_code == 200
    finally:
        proc.stop()
