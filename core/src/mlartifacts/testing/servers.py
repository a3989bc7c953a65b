"""Helpers to run real storage servers for tests: free ports, readiness, stopping by PID.

Backends are tested against real servers started by the test session on
127.0.0.1. These helpers keep the fixtures that do so short::

    @pytest.fixture(scope="session")
    def ftp_server(tmp_path_factory):
        port = free_port()
        with ServerProcess([sys.executable, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(port)],
                           log=tmp_path_factory.mktemp("ftp") / "ftp.log", stop_signal=signal.SIGINT) as proc:
            wait_for(tcp_open(port), proc=proc, what="pyftpdlib")
            yield port
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator

__all__ = [
    "Relay",
    "ServerProcess",
    "SilentServer",
    "find_executable",
    "free_port",
    "http_ok",
    "logged_requests",
    "start_artifacts_server",
    "tcp_open",
    "wait_for",
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it before you bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tcp_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A readiness check: the port accepts TCP connections."""

    def check() -> bool:
        with socket.create_connection((host, port), timeout=1):
            return True

    return check


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: the URL answers HTTP (any status)."""
    import urllib.error
    import urllib.request

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                pass
        except urllib.error.HTTPError:
            pass  # an HTTP error status still means the server is up
        return True

    return check


def find_executable(name: str, *extra_dirs: str | Path) -> str | None:
    """An executable on PATH, next to this interpreter (a venv's bin/), or in ``extra_dirs``."""
    candidates = [Path(sys.executable).parent / name, *(Path(d) / name for d in extra_dirs)]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def wait_for(
    check: Callable[[], Any],
    timeout: float = 60.0,
    *,
    proc: ServerProcess | subprocess.Popen[bytes] | None = None,
    what: str = "server",
) -> None:
    """Poll ``check`` until it returns truthy; fail early if ``proc`` exits, late after ``timeout``."""
    popen = proc.popen if isinstance(proc, ServerProcess) else proc
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            log = proc.log_tail() if isinstance(proc, ServerProcess) else ""
            raise RuntimeError(f"{what} exited early with code {popen.returncode}{log}")
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - not ready yet, whatever the reason
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:g} s: {last!r}")


class ServerProcess:
    """A server subprocess with its output in a log file, stopped by PID on exit.

    Args:
        cmd: the command line.
        log: file that receives stdout and stderr.
        stop_signal: sent first on stop (SIGKILL follows after ``stop_timeout``).
        **popen: extra ``subprocess.Popen`` arguments (``env``, ``cwd``...).
    """

    def __init__(
        self,
        cmd: list[str],
        log: str | Path,
        *,
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float = 10.0,
        **popen: Any,
    ) -> None:
        self.cmd = cmd
        self.log = Path(log)
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self._popen_args = popen
        self._log_file: IO[bytes] | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    def start(self) -> ServerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.cmd, stdout=self._log_file, stderr=subprocess.STDOUT, **self._popen_args
        )
        return self

    def stop(self) -> None:
        """Signal the process, wait, kill it if it lingers; close the log."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the log, for error messages."""
        try:
            tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return ""
        return "\n" + "\n".join(tail) if tail else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Relay(ServerProcess):
    """A TCP relay to ``target_port`` in a subprocess; :meth:`hung` makes it a hung server.

    Point a client at ``port`` instead of the real server: while :meth:`hung`, the
    relay is SIGSTOPped (connections are accepted, nothing is answered, streams
    stall midway), and the real server, which other tests share, keeps running.
    """

    def __init__(
        self, target_port: int, log: str | Path, target_host: str = "127.0.0.1", latency: float = 0.0
    ) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "mlartifacts.testing._relay", str(self.port), target_host]
        cmd += [str(target_port), str(latency)]  # latency: seconds each client send is held
        super().__init__(cmd, log, stop_timeout=5)

    def start(self) -> Relay:
        super().start()
        wait_for(tcp_open(self.port), 10, proc=self, what="relay")
        return self

    @contextlib.contextmanager
    def hung(self) -> Iterator[None]:
        """Stop the relay (SIGSTOP) for the block; it always continues (SIGCONT) after."""
        os.kill(self.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a stopped process would not act on SIGTERM
        super().stop()


@dataclass
class SilentConnection:
    """One connection a :class:`SilentServer` accepted: what the client sent, and when it hung up."""

    opened: float  # time.monotonic()
    received: bytes = b""
    closed: float | None = None  # when the client closed it (None: still open)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word (a hung storage).

    Unlike a stopped :class:`Relay`, it reads what clients send (``received``: the
    request line tells a client's requests apart) and notes when each client gives up
    and closes its connection, so a test can check that a client's socket timeout
    ends its calls. Everything stops when the ``with`` block ends.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self.connections: list[SilentConnection] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, name="silent-server", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            record = SilentConnection(time.monotonic())
            with self._lock:
                if self._stopped:
                    conn.close()
                    return
                self.connections.append(record)
                self._sockets.append(conn)
            threading.Thread(target=self._drain, args=(conn, record), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket, record: SilentConnection) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            if not data:
                record.closed = time.monotonic()
                return
            if len(record.received) < 4096:
                record.received += data[: 4096 - len(record.received)]

    def open_after(self, seconds: float, sent: bytes = b"") -> list[SilentConnection]:
        """Connections (whose first bytes contain ``sent``) still open ``seconds`` after they opened.

        Waits until every such connection is either closed or that old.
        """
        while True:
            now = time.monotonic()
            with self._lock:
                wanted = [c for c in self.connections if sent in c.received]
            late = [c for c in wanted if (c.closed or now) - c.opened > seconds]
            if all(c.closed is not None or now - c.opened > seconds for c in wanted):
                return late
            time.sleep(0.05)

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._stopped = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for conn in sockets:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()


def start_artifacts_server(
    destination: str, log: str | Path, env: dict[str, str] | None = None, *args: str
) -> tuple[ServerProcess, str]:
    """``mlartifacts server`` for ``destination`` on 127.0.0.1, started and answering.

    Returns the process (stop it by :meth:`ServerProcess.stop`) and its base URL.
    ``args`` are more server options; ``env`` the server's whole environment.
    """
    port = free_port()
    cmd = [
        sys.executable, "-c", "from mlartifacts.cli import main; main()", "server",
        "--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(port), *args,
    ]  # fmt: skip
    process = ServerProcess(cmd, log, env=env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(http_ok(f"{url}/health"), 30, proc=process, what="mlartifacts server")
    except BaseException:
        process.stop()
        raise
    return process, url


def logged_requests(log: str | Path) -> list[str]:
    """The request lines in an ``mlartifacts server`` access log so far ("PUT /api/...")."""
    lines = Path(log).read_text().splitlines()
    return [line.split('"')[1] for line in lines if line.count('"') >= 2 and " HTTP/" in line]
