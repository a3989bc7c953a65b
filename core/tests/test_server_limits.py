"""Limits on request heads: oversized lines and headers, too many headers, slow heads (slowloris)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import RunningServer, start_cli_server


def _exchange(server: RunningServer, raw: bytes, pause: float = 0.0) -> bytes:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        try:
            conn.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished sending: the answer is still there to read
        time.sleep(pause)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_an_oversized_request_line_is_refused(server: RunningServer) -> None:
    raw = b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    assert _status(_exchange(server, raw)) == 414


def test_an_oversized_header_is_refused(server: RunningServer) -> None:
    raw = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * (1 << 20) + b"\r\n\r\n"
    assert _status(_exchange(server, raw)) == 431


def test_too_many_headers_are_refused(server: RunningServer) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
    raw = b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n"
    assert _status(_exchange(server, raw)) == 431


def test_ordinary_requests_still_pass(server: RunningServer) -> None:
    headers = {f"X-H{i}": "v" * 100 for i in range(50)}
    assert requests.get(f"{server.url}/health", headers=headers, timeout=10).status_code == 200


@pytest.fixture
def impatient(tmp_path: Path) -> Iterator[RunningServer]:
    proc = start_cli_server(tmp_path, env={"MLARTIFACTS_SERVER_HEADER_TIMEOUT": "1"})
    try:
        yield RunningServer(f"http://127.0.0.1:{proc.port}", tmp_path / "artifacts", proc)  # type: ignore[attr-defined]
    finally:
        proc.stop()


def test_slow_heads_are_cut_off(impatient: RunningServer) -> None:
    port = int(impatient.url.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    try:
        for conn in slow:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")  # and never the rest
        time.sleep(2.5)
        for conn in slow:
            answer = conn.recv(65536)
            assert _status(answer) == 408
            assert conn.recv(65536) == b""  # closed by the server
    finally:
        for conn in slow:
            conn.close()
    # The server still answers, and a connection idle before its first byte is closed too.
    assert requests.get(f"{impatient.url}/health", timeout=10).status_code == 200
    with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        time.sleep(2.5)
        assert _status(idle.recv(65536)) == 408


def test_a_long_upload_is_not_cut_off_by_the_head_timeout(impatient: RunningServer) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * 1000
            time.sleep(0.8)  # the body takes longer than the head timeout: that is fine

    url = f"{impatient.url}/api/2.0/mlflow-artifacts/artifacts/slow/upload.bin"
    assert requests.put(url, data=body(), timeout=30).status_code == 200
    assert requests.get(url, timeout=10).content == b"x" * 3000
