"""Servers for the service's tests: the real CLI in a subprocess, or an app served in-process."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# MLflow's client and server (used to prove compatibility) send telemetry by default.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

from mlartifacts.server import hash_password
from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

API = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class RunningServer:
    """A service on 127.0.0.1: its base URL and where it stores artifacts."""

    url: str
    destination: Path | None = None
    process: ServerProcess | None = None

    @property
    def artifacts(self) -> str:
        return self.url + API

    def log(self) -> str:
        return self.process.log.read_text() if self.process else ""


def start_cli_server(
    tmp: Path, *args: str, env: dict[str, str] | None = None, destination: str | None = None
) -> ServerProcess:
    port = free_port()
    dest = destination or str(tmp / "artifacts")
    cmd = [
        sys.executable, "-c", "from mlartifacts.cli import main; main()", "server",
        "--artifacts-destination", dest, "--host", "127.0.0.1", "--port", str(port), *args,
    ]  # fmt: skip
    proc = ServerProcess(cmd, tmp / "server.log", env={**os.environ, **(env or {})}).start()
    proc.port = port  # type: ignore[attr-defined]
    try:
        prefix = args[args.index("--static-prefix") + 1] if "--static-prefix" in args else ""
        wait_for(http_ok(f"http://127.0.0.1:{port}{prefix}/health"), 30, proc=proc, what="mlartifacts server")
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`mlartifacts server` on local disk, in a subprocess, for the whole session."""
    tmp = tmp_path_factory.mktemp("server")
    proc = start_cli_server(tmp)
    try:
        yield RunningServer(f"http://127.0.0.1:{proc.port}", tmp / "artifacts", proc)  # type: ignore[attr-defined]
    finally:
        proc.stop()


@contextlib.contextmanager
def serve_app(app: Any, **tls: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 in a thread; yields its base URL.

    ``tls`` takes uvicorn's ``ssl_*`` options to serve HTTPS.
    """
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("in-process uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        from mlartifacts.client._http import close_sessions

        close_sessions()  # idle keep-alive connections would hold up the server's shutdown
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No MLflow client settings leak in from the developer's environment."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_TRACKING_", "MLFLOW_ENABLE_PROXY", "MLFLOW_MULTIPART")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_CREDENTIALS_FILE", os.devnull)
    from mlartifacts.client import plugin

    plugin.server_info.clear()
    return monkeypatch


@pytest.fixture
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`mlartifacts server` with Basic users (alice plain, bob hashed) and a bearer token."""
    tmp = tmp_path_factory.mktemp("auth")
    (tmp / "users").write_text(f"alice:wonderland\nbob:{hash_password('builder', iterations=1000)}\n")
    (tmp / "tokens").write_text("# one per line\nsecret-token\n")
    proc = start_cli_server(tmp, "--users-file", str(tmp / "users"), "--tokens-file", str(tmp / "tokens"))
    try:
        yield RunningServer(f"http://127.0.0.1:{proc.port}", tmp / "artifacts", proc)  # type: ignore[attr-defined]
    finally:
        proc.stop()
