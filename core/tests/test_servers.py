"""The test-server helpers: start, wait for readiness, stop by PID, report early exits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, tcp_open, wait_for


def test_http_server_lifecycle(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    with ServerProcess(cmd, tmp_path / "http.log", cwd=tmp_path) as proc:
        wait_for(http_ok(f"http://127.0.0.1:{port}/"), 20, proc=proc, what="http.server")
        assert tcp_open(port)()
        pid = proc.pid
    assert proc.popen is not None and proc.popen.returncode is not None
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_early_exit_is_reported_with_the_log(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('bad flag --frobnicate'); sys.exit(3)"]
    with (
        ServerProcess(cmd, tmp_path / "bad.log") as proc,
        pytest.raises(RuntimeError, match=r"(?s)broken exited early with code 3.*bad flag --frobnicate"),
    ):
        wait_for(lambda: False, 20, proc=proc, what="broken")


def test_timeout() -> None:
    with pytest.raises(TimeoutError, match=r"never not ready after 0\.3 s"):
        wait_for(lambda: False, 0.3, what="never")
