"""The service's wire protocol, driven with raw HTTP against `mlartifacts server` in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from mlartifacts.paths import DIGEST_PREFIX, TEMP_PREFIX
from mlartifacts.testing.contract import random_bytes

from .conftest import API, RunningServer, start_cli_server

MPU_501 = "Multipart upload is not supported for the current artifact repository"


@pytest.fixture
def run(server: RunningServer) -> str:
    """A fresh run root below the destination."""
    return f"1/{uuid.uuid4().hex}/artifacts"


def put(server: RunningServer, path: str, data: bytes, **kwargs: object) -> requests.Response:
    return requests.put(f"{server.artifacts}/{path}", data=data, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_put_get_round_trip(server: RunningServer, run: str) -> None:
    data = random_bytes(3_000_001)
    response = put(server, f"{run}/model/weights.bin", data)
    assert (response.status_code, response.json()) == (200, {})
    assert (server.destination / run / "model" / "weights.bin").read_bytes() == data  # type: ignore[operator]
    got = requests.get(f"{server.artifacts}/{run}/model/weights.bin", timeout=30)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-Length"] == str(len(data))
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["ETag"]
    assert got.headers["Last-Modified"].endswith("GMT")


def test_put_overwrites_and_creates_parents(server: RunningServer, run: str) -> None:
    put(server, f"{run}/a/b/c.txt", b"first, and longer")
    put(server, f"{run}/a/b/c.txt", b"second")
    assert requests.get(f"{server.artifacts}/{run}/a/b/c.txt", timeout=10).content == b"second"


def test_put_needs_a_file_name(server: RunningServer, run: str) -> None:
    response = put(server, f"{run}/dir/", b"x")
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "must include a filename" in response.json()["message"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [("notes.txt", "text/plain"), ("metrics.json", "text/plain"), ("MLmodel", "text/plain"),
     ("plot.png", "image/png"), ("blob", "application/octet-stream")],
)  # fmt: skip
def test_content_type(server: RunningServer, run: str, name: str, kind: str) -> None:
    put(server, f"{run}/{name}", b"x")
    assert (
        requests.get(f"{server.artifacts}/{run}/{name}", timeout=10).headers["Content-Type"].startswith(kind)
    )


def test_non_ascii_file_name(server: RunningServer, run: str) -> None:
    put(server, f"{run}/{quote('modèle ✓.bin')}", b"x")
    response = requests.get(f"{server.artifacts}/{run}/{quote('modèle ✓.bin')}", timeout=10)
    assert response.status_code == 200
    assert "filename*=UTF-8''mod%C3%A8le%20%E2%9C%93.bin" in response.headers["Content-Disposition"]


def test_listing(server: RunningServer, run: str) -> None:
    put(server, f"{run}/b.bin", b"123456")
    put(server, f"{run}/dir/x.txt", b"x")
    body = requests.get(server.artifacts, params={"path": run}, timeout=10).json()
    assert body == {
        "files": [{"path": "b.bin", "is_dir": False, "file_size": 6}, {"path": "dir", "is_dir": True}]
    }
    for empty in (f"{run}/b.bin", f"{run}/missing", f"{run}/dir/x.txt"):
        assert requests.get(server.artifacts, params={"path": empty}, timeout=10).json() == {}


def test_paginated_and_recursive_listing(server: RunningServer, run: str) -> None:
    for i in range(7):
        put(server, f"{run}/many/f{i}.txt", b"x" * i)
    put(server, f"{run}/many/sub/deep.txt", b"deep")
    seen, token = [], None
    while True:
        params = {"path": f"{run}/many", "max_results": "3", **({"page_token": token} if token else {})}
        body = requests.get(server.artifacts, params=params, timeout=10).json()
        seen += [f["path"] for f in body["files"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == [f"f{i}.txt" for i in range(7)] + ["sub"]
    body = requests.get(
        server.artifacts, params={"path": f"{run}/many", "recursive": "true"}, timeout=10
    ).json()
    assert [f["path"] for f in body["files"]][-1] == "sub/deep.txt"
    assert len(body["files"]) == 8


def test_ranges(server: RunningServer, run: str) -> None:
    data = random_bytes(10_000)
    put(server, f"{run}/r.bin", data)
    url = f"{server.artifacts}/{run}/r.bin"
    cases = {
        "bytes=0-9": (0, 10),
        "bytes=9990-": (9990, 10_000),
        "bytes=-5": (9995, 10_000),
        "bytes=100-99999": (100, 10_000),
    }
    for header, (start, end) in cases.items():
        response = requests.get(url, headers={"Range": header}, timeout=10)
        assert response.status_code == 206, header
        assert response.content == data[start:end]
        assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/10000"
        assert response.headers["Content-Length"] == str(end - start)
    unsatisfiable = requests.get(url, headers={"Range": "bytes=10000-"}, timeout=10)
    assert (unsatisfiable.status_code, unsatisfiable.headers["Content-Range"]) == (416, "bytes */10000")
    assert requests.get(url, headers={"Range": "bytes=0-1,5-6"}, timeout=10).status_code == 200


def test_conditional_requests(server: RunningServer, run: str) -> None:
    put(server, f"{run}/c.bin", b"0123456789")
    url = f"{server.artifacts}/{run}/c.bin"
    etag = requests.head(url, timeout=10).headers["ETag"]
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    stale = requests.get(url, headers={"Range": "bytes=0-1", "If-Range": '"other"'}, timeout=10)
    assert (stale.status_code, stale.content) == (200, b"0123456789")
    fresh = requests.get(url, headers={"Range": "bytes=0-1", "If-Range": etag}, timeout=10)
    assert (fresh.status_code, fresh.content) == (206, b"01")


def test_head(server: RunningServer, run: str) -> None:
    put(server, f"{run}/h.bin", b"abc")
    response = requests.head(f"{server.artifacts}/{run}/h.bin", timeout=10)
    assert (response.status_code, response.headers["Content-Length"], response.content) == (200, "3", b"")


def test_missing_and_directory(server: RunningServer, run: str) -> None:
    missing = requests.get(f"{server.artifacts}/{run}/nope.bin", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    put(server, f"{run}/d/x", b"x")
    directory = requests.get(f"{server.artifacts}/{run}/d", timeout=10)
    assert directory.status_code == 400
    assert directory.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_delete(server: RunningServer, run: str) -> None:
    put(server, f"{run}/keep.txt", b"k")
    put(server, f"{run}/tree/a.txt", b"a")
    put(server, f"{run}/tree/sub/b.txt", b"b")
    for path in (f"{run}/tree", f"{run}/tree", f"{run}/never"):  # missing is fine too, as in MLflow
        response = requests.delete(f"{server.artifacts}/{path}", timeout=10)
        assert (response.status_code, response.json()) == (200, {})
    names = sorted(p.name for p in (server.destination / run).iterdir())  # type: ignore[operator]
    # (A digest sidecar only where the disk has no extended attributes.)
    assert [n for n in names if not n.startswith(DIGEST_PREFIX)] == ["keep.txt"]


@pytest.mark.parametrize(
    "bad",
    ["../escape.txt", "a/../../escape.txt", "%2E%2E/escape.txt", "%252E%252E/escape.txt",
     "a%5Cb.txt", "a%23b.txt", "a%00b.txt", "a%0Ab.txt", f"{TEMP_PREFIX}x"],
)  # fmt: skip
def test_unsafe_paths_are_refused_everywhere(server: RunningServer, bad: str) -> None:
    before = set(Path(server.destination.parent).rglob("*"))  # type: ignore[union-attr]
    base = server.url + "/api/2.0/mlflow-artifacts"
    attempts = [
        requests.put(f"{base}/artifacts/{bad}", data=b"x", timeout=10),
        requests.get(f"{base}/artifacts/{bad}", timeout=10),
        requests.delete(f"{base}/artifacts/{bad}", timeout=10),
        requests.get(f"{base}/artifacts?path={bad}", timeout=10),
        requests.get(f"{base}/presigned/{bad}", timeout=10),
        requests.post(f"{base}/mpu/create/{bad}", json={"path": "x", "num_parts": 1}, timeout=10),
    ]
    for response in attempts:
        # A literal '..' is collapsed by requests itself before sending (the raw-socket
        # test below sends it as is); whatever arrives must be refused.
        expected = (400, 501) if ".." not in bad.split("/") else (400, 404, 501)
        assert response.status_code in expected, (response.request.method, response.url, response.text)
        if response.status_code == 400:
            assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            assert response.json()["message"].startswith("Invalid path")
    assert set(Path(server.destination.parent).rglob("*")) <= before | set(server.destination.rglob("*"))  # type: ignore[union-attr]
    assert not (server.destination.parent / "escape.txt").exists()  # type: ignore[union-attr]


def test_raw_dot_dot_in_the_request_line(server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(
            f"GET {API}/1/../../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"root:" not in reply


def test_multipart_and_presign_unsupported_on_local_disk(server: RunningServer, run: str) -> None:
    base = server.url + "/api/2.0/mlflow-artifacts"
    for route in ("create", "complete", "abort"):
        body = {
            "path": "/home/me/model.bin",
            "num_parts": 2,
            "upload_id": "x",
            "parts": [{"part_number": 1, "etag": "e"}],
        }
        response = requests.post(f"{base}/mpu/{route}/{run}", json=body, timeout=10)
        assert response.status_code == 501
        assert response.json() == {"error_code": "NOT_IMPLEMENTED", "message": MPU_501}
    put(server, f"{run}/f.bin", b"x")
    presigned = requests.get(f"{base}/presigned/{run}/f.bin", timeout=10)
    assert presigned.status_code == 501
    assert presigned.json()["error_code"] == "NOT_IMPLEMENTED"
    info = requests.get(server.url + "/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is False
    assert info["multipart_downloads_enabled"] is False
    assert (
        requests.post(f"{base}/mpu/create/{run}", data=b"{}", timeout=10).status_code == 400
    )  # no JSON type


def test_ajax_api_and_other_routes(server: RunningServer, run: str) -> None:
    put(server, f"{run}/a.txt", b"ajax")
    assert (
        requests.get(f"{server.url}/ajax-api/2.0/mlflow-artifacts/artifacts/{run}/a.txt", timeout=10).content
        == b"ajax"
    )
    assert requests.get(f"{server.url}/ajax-api/3.0/mlflow/server-info", timeout=10).status_code == 200
    assert requests.get(f"{server.url}/health", timeout=10).text == "OK"
    unknown = requests.get(f"{server.url}/api/2.0/mlflow/runs/get", timeout=10)
    assert (unknown.status_code, unknown.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert requests.post(f"{server.artifacts}/{run}/a.txt", timeout=10).status_code == 405


def test_access_log_has_one_line_per_request(server: RunningServer, run: str) -> None:
    marker = uuid.uuid4().hex
    requests.get(server.artifacts, params={"path": f"{run}/{marker}"}, timeout=10)
    deadline = time.monotonic() + 5
    while marker not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in server.log().splitlines() if marker in line]
    assert len(lines) == 1
    assert '"GET /api/2.0/mlflow-artifacts/artifacts?path=' in lines[0] and " 200 " in lines[0]


def _destination_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_cut_off_upload_leaves_nothing(server: RunningServer, run: str) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    before = _destination_files(server.destination)  # type: ignore[arg-type]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"PUT {API}/{run}/cut.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {10 << 20}\r\n\r\n"
        s.sendall(head.encode() + random_bytes(3 << 20))
        time.sleep(0.3)  # the server is now writing the first MiBs
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = _destination_files(server.destination)  # type: ignore[arg-type]
        if after == before:
            break
        time.sleep(0.1)
    assert _destination_files(server.destination) == before  # type: ignore[arg-type]
    assert requests.get(f"{server.artifacts}/{run}/cut.bin", timeout=10).status_code == 404


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_large_transfers_are_streamed_not_staged(tmp_path: Path) -> None:
    proc = start_cli_server(tmp_path)
    try:
        url = f"http://127.0.0.1:{proc.port}{API}/big/blob.bin"  # type: ignore[attr-defined]
        size = 384 << 20
        block = random_bytes(1 << 20)
        baseline = _hwm_mib(proc.pid)
        response = requests.put(url, data=(block for _ in range(size >> 20)), timeout=120)
        assert response.status_code == 200
        with requests.get(url, stream=True, timeout=120) as got:
            received = sum(len(c) for c in got.iter_content(1 << 20))
        assert received == size
        growth = _hwm_mib(proc.pid) - baseline
        assert growth < 64, f"the server's peak memory grew by {growth:.0f} MiB for a {size >> 20} MiB file"
    finally:
        proc.stop()


def test_static_prefix(tmp_path: Path) -> None:
    proc = start_cli_server(tmp_path, "--static-prefix", "/mlflow")
    try:
        base = f"http://127.0.0.1:{proc.port}"  # type: ignore[attr-defined]
        assert requests.put(f"{base}/mlflow{API}/p/x.txt", data=b"x", timeout=10).status_code == 200
        assert requests.get(f"{base}/mlflow{API}/p/x.txt", timeout=10).content == b"x"
        assert requests.get(f"{base}{API}/p/x.txt", timeout=10).status_code == 404
        assert requests.get(f"{base}/mlflow/api/3.0/mlflow/server-info", timeout=10).status_code == 200
    finally:
        proc.stop()


def test_several_workers(tmp_path: Path) -> None:
    proc = start_cli_server(tmp_path, "--workers", "2")
    try:
        base = f"http://127.0.0.1:{proc.port}{API}"  # type: ignore[attr-defined]
        for i in range(8):
            assert requests.put(f"{base}/w/{i}.txt", data=str(i).encode(), timeout=10).status_code == 200
        listed = requests.get(base, params={"path": "w"}, timeout=10).json()
        assert sorted(f["path"] for f in listed["files"]) == [f"{i}.txt" for i in range(8)]
    finally:
        proc.stop()


def test_bad_destination_fails_at_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from mlartifacts.cli import main; main()", "server",
         "--artifacts-destination", "nosuch://bucket", "--port", "5999"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "mlartifacts: error: no plugin handles scheme 'nosuch'; installed plugins handle: "
        + done.stderr.split("handle: ", 1)[1].strip()
    )
    assert "Traceback" not in done.stderr


def test_env_defaults(tmp_path: Path) -> None:
    env = {"MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "from-env")}
    proc = start_cli_server(tmp_path, env=env, destination=str(tmp_path / "from-flag"))
    try:
        base = f"http://127.0.0.1:{proc.port}{API}"  # type: ignore[attr-defined]
        requests.put(f"{base}/x.txt", data=b"x", timeout=10)
        assert (tmp_path / "from-flag" / "x.txt").exists()  # the flag wins over the variable
        assert not (tmp_path / "from-env").exists()
    finally:
        proc.stop()
    assert json.dumps({}) == "{}" and os.sep == "/"


def _open_in(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds ``path`` open."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue  # closed meanwhile
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the server's open files")
def test_download_cut_off_midway_releases_the_file(server: RunningServer, run: str) -> None:
    """The server reads a download ahead on a thread; a client gone midway stops it and closes the file."""
    data = random_bytes(64 * 1024 * 1024)  # more than every buffer between the file and the client
    put(server, f"{run}/big.bin", data).raise_for_status()
    stored = server.destination / run / "big.bin"  # type: ignore[operator]
    assert server.process is not None and server.process.popen is not None
    pid = server.process.popen.pid
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=30) as conn:
        conn.sendall(f"GET {API}/{run}/big.bin HTTP/1.1\r\nHost: {server.url[7:]}\r\n\r\n".encode())
        received = 0
        while received < 1024 * 1024:  # some of the body, then the client goes away
            received += len(conn.recv(65536))
        assert _open_in(pid, stored)
    deadline = time.monotonic() + 10
    while _open_in(pid, stored) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _open_in(pid, stored)
    assert requests.get(f"{server.artifacts}/{run}/big.bin", timeout=30).content == data  # still served
