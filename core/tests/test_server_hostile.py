"""Hostile input to the service: every mistake is a clear 4xx, never a 500, and no answer shows a server path.

Each case here was a 500 (or an answer naming the destination's own filesystem path)
before the fix that goes with it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import uuid

import pytest
import requests

from .conftest import RunningServer

LONG = "n" * 300  # one component over the usual 255-byte limit of filesystems


@pytest.fixture
def run(server: RunningServer) -> str:
    return f"1/{uuid.uuid4().hex}/artifacts"


def _api(server: RunningServer, route: str) -> str:
    return f"{server.url}/api/2.0/mlflow-artifacts/{route}"


def _assert_client_error(response: requests.Response, server: RunningServer) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    _assert_no_server_path(response, server)


def _assert_no_server_path(response: requests.Response, server: RunningServer) -> None:
    destination = str(server.destination)
    for location in {destination, os.path.realpath(destination), os.path.dirname(destination)}:
        assert location not in response.text, response.text[:300]


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    "name",
    [
        LONG,
        "/".join(["d"] * 2100),
        "a/" + "é" * 200,
    ],  # a long component; a path over 4096 bytes; 400 bytes of UTF-8
    ids=["long-component", "long-path", "long-utf8-component"],
)
def test_long_names_are_refused_on_every_route(server: RunningServer, run: str, name: str) -> None:
    path = f"{run}/{name}"
    artifacts = _api(server, "artifacts")
    answers = [
        requests.get(f"{artifacts}/{path}", timeout=30),
        requests.head(f"{artifacts}/{path}", timeout=30),
        requests.put(f"{artifacts}/{path}", data=b"x", timeout=30),
        requests.delete(f"{artifacts}/{path}", timeout=30),
        requests.get(artifacts, params={"path": path}, timeout=30),
        requests.post(_api(server, f"batch/download/{run}"), json={"paths": [name]}, timeout=30),
        requests.post(
            _api(server, f"batch/upload/{run}"),
            data=_tar({name: b"x"}),
            headers={"Content-Type": "application/x-tar"},
            timeout=30,
        ),
    ]
    for response in answers:
        assert response.status_code == 400, (
            response.request.method,
            response.status_code,
            response.text[:200],
        )
        _assert_no_server_path(response, server)


def test_a_missing_artifact_names_the_artifact_not_the_destination(server: RunningServer, run: str) -> None:
    response = requests.get(f"{_api(server, 'artifacts')}/{run}/missing.bin", timeout=10)
    assert response.status_code == 404
    assert f"{run}/missing.bin" in response.json()["message"]
    _assert_no_server_path(response, server)


def test_a_directory_where_a_file_is_written_is_a_client_error(server: RunningServer, run: str) -> None:
    artifacts = _api(server, "artifacts")
    assert requests.put(f"{artifacts}/{run}/dir/file", data=b"x", timeout=10).status_code == 200
    # 'dir' is a directory: writing a file there, or below the file, is the client's mistake.
    for path in (f"{run}/dir", f"{run}/dir/file/below"):
        _assert_client_error(requests.put(f"{artifacts}/{path}", data=b"y", timeout=10), server)


@pytest.mark.parametrize("route", ["mpu/create", "mpu/complete", "mpu/abort", "batch/download"])
def test_deeply_nested_json_is_refused(server: RunningServer, run: str, route: str) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = requests.post(
        _api(server, f"{route}/{run}"), data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    _assert_client_error(response, server)


def test_an_oversized_json_body_is_refused(server: RunningServer, run: str) -> None:
    body = json.dumps({"path": "x", "num_parts": 1, "padding": "p" * (20 * 1024 * 1024)})
    response = requests.post(
        _api(server, f"mpu/create/{run}"), data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    assert response.status_code == 413, response.text[:200]


def test_ranges_with_huge_numbers(server: RunningServer, run: str) -> None:
    url = f"{_api(server, 'artifacts')}/{run}/f.bin"
    requests.put(url, data=b"0123456789", timeout=10)
    huge = "9" * 10_000
    past_the_end = requests.get(url, headers={"Range": f"bytes={huge}-"}, timeout=10)
    assert (past_the_end.status_code, past_the_end.headers["Content-Range"]) == (416, "bytes */10")
    to_a_huge_end = requests.get(url, headers={"Range": f"bytes=2-{huge}"}, timeout=10)
    assert (to_a_huge_end.status_code, to_a_huge_end.content) == (206, b"23456789")
    huge_suffix = requests.get(url, headers={"Range": f"bytes=-{huge}"}, timeout=10)
    assert (huge_suffix.status_code, huge_suffix.content) == (206, b"0123456789")


@pytest.mark.parametrize("header", ["bytes=-1", "bytes=0-", "bytes=0-0"])
def test_a_range_of_an_empty_file_is_unsatisfiable(server: RunningServer, run: str, header: str) -> None:
    url = f"{_api(server, 'artifacts')}/{run}/empty.bin"
    requests.put(url, data=b"", timeout=10)
    response = requests.get(url, headers={"Range": header}, timeout=10)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */0"


def test_a_compressed_transfer_coding_is_refused(server: RunningServer, run: str) -> None:
    path = f"/api/2.0/mlflow-artifacts/artifacts/{run}/coded.bin"
    payload = b"\x1f\x8b compressed bytes"
    request = (
        (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n"
            f"Connection: close\r\n\r\n{len(payload):x}\r\n"
        ).encode()
        + payload
        + b"\r\n0\r\n\r\n"
    )
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert requests.get(f"{server.url}{path}", timeout=10).status_code == 404  # nothing was stored


def test_deleting_a_directory_while_files_are_written_into_it(server: RunningServer, run: str) -> None:
    """Both sides get a defined answer: DELETE 200 (or 409), PUT 200 (or 409), never a 500 or a temp name."""
    import concurrent.futures

    artifacts = _api(server, "artifacts")
    statuses: list[tuple[str, int, str]] = []

    def put(i: int) -> None:
        response = requests.put(f"{artifacts}/{run}/d/sub{i % 5}/f{i}.bin", data=b"x" * 2000, timeout=30)
        statuses.append(("PUT", response.status_code, response.text))

    def delete() -> None:
        response = requests.delete(f"{artifacts}/{run}/d", timeout=30)
        statuses.append(("DELETE", response.status_code, response.text))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for round_ in range(15):
            jobs = [pool.submit(put, round_ * 20 + i) for i in range(20)]
            jobs += [pool.submit(delete) for _ in range(3)]
            for job in jobs:
                job.result()
    bad = [s for s in statuses if s[1] not in (200, 409)]
    assert not bad, bad[:5]
    assert not [s for s in statuses if ".mlartifacts-partial" in s[2]]
    assert {s[1] for s in statuses if s[0] == "DELETE"} >= {200}
