"""The client honours what requests reads from the environment: proxies, NO_PROXY, ~/.netrc.

The client looks these up once per host (not on every request, as requests does),
so these tests also change the environment between calls.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import TransientError

from .conftest import RunningServer

QUICK = Settings(max_retries=0)


class RefusingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that records each request line and answers 502."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        self.server.lines.append(line)  # type: ignore[attr-defined]
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the headers; the body (if any) is never read: the answer comes first
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def proxy() -> Iterator[RefusingProxy]:
    server = RefusingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_proxy_and_no_proxy_from_the_environment(
    server: RunningServer, proxy: RefusingProxy, client_env: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        client_env.delenv(name, raising=False)
    uri = f"{server.artifacts}/proxied"
    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("f.txt", b"direct")
    client_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    with ArtifactStore(uri, settings=QUICK) as store, pytest.raises(TransientError, match="HTTP 502"):
        store.read_bytes("f.txt")
    assert proxy.lines == [f"GET {server.artifacts}/proxied/f.txt HTTP/1.1"]  # absolute form: a proxy request
    client_env.setenv("NO_PROXY", "127.0.0.1")
    with ArtifactStore(uri, settings=QUICK) as store:
        assert store.read_bytes("f.txt") == b"direct"
    assert len(proxy.lines) == 1


def test_netrc_login_unless_credentials_are_set(
    auth_server: RunningServer, client_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password wonderland\n")
    netrc.chmod(0o600)
    client_env.setenv("NETRC", str(netrc))
    with ArtifactStore(f"{auth_server.artifacts}/netrc", settings=QUICK) as store:
        store.write_bytes("n.txt", b"from netrc")
    # Explicit credentials win: the token is sent, not the netrc login over it.
    netrc.write_text("machine 127.0.0.1 login alice password wrong\n")
    client_env.setenv("HOME", str(tmp_path))  # lookups are cached per environment: make it look again
    client_env.setenv("MLFLOW_TRACKING_TOKEN", "secret-token")
    with ArtifactStore(f"{auth_server.artifacts}/netrc", settings=QUICK) as store:
        assert store.read_bytes("n.txt") == b"from netrc"
