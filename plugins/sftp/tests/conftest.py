"""A real OpenSSH sshd on 127.0.0.1, with its own config, host key and client keys.

The session's sshd serves the contract suite and most tests; ``start_sshd`` makes
extra ones with other settings (MaxSessions, password logins) for a single test.
Every test here sees ``MLARTIFACTS_SFTP_CONFIG`` / ``MLARTIFACTS_SFTP_KNOWN_HOSTS``
pointing at this session's files, so the developer's own ~/.ssh is never read.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlartifacts.pool import close_all
from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, tcp_open, wait_for

INSTALL = "scripts/install installs it (apt-get install openssh-server)"
ALIAS = "sftp-test"


@dataclass
class Sshd:
    """One running sshd and the files that describe it."""

    port: int
    root: Path  # a directory the login user may write to
    dir: Path
    log: Path
    host_key: Path
    user: str
    process: ServerProcess
    keys: dict[str, Path] = field(default_factory=dict)

    def host_key_line(self) -> str:
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def stop(self) -> None:
        """Stop the listener and the connections it forked."""
        pids = self.connection_pids()
        self.process.stop()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def connection_pids(self) -> list[int]:
        """The per-connection sshd processes (children of the listener)."""
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]


def _keygen(path: Path, kind: str) -> Path:
    bits = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", "", "-C", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def sshd_binary() -> str:
    binary = find_executable("sshd", "/usr/sbin")
    if binary is None or shutil.which("ssh-keygen") is None:
        pytest.skip(f"OpenSSH sshd not found: {INSTALL}")
    if os.geteuid() != 0:
        pytest.skip("sshd needs root here (it creates /run/sshd and switches users)")
    return binary


@pytest.fixture(scope="session")
def privsep_dir() -> Iterator[None]:
    """sshd insists on /run/sshd; made for the session, removed only if we made it."""
    path = Path("/run/sshd")
    made = not path.exists()
    path.mkdir(mode=0o755, exist_ok=True)
    yield
    if made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def client_keys(tmp_path_factory: pytest.TempPathFactory, sshd_binary: str) -> dict[str, Path]:
    keys = tmp_path_factory.mktemp("client-keys")
    return {kind: _keygen(keys / f"id_{kind}", kind) for kind in ("ed25519", "rsa")}


@pytest.fixture(scope="session")
def start_sshd(
    tmp_path_factory: pytest.TempPathFactory,
    sshd_binary: str,
    privsep_dir: None,
    client_keys: dict[str, Path],
) -> Iterator[Callable[..., Sshd]]:
    """Start an sshd with extra sshd_config lines; all are stopped (by PID) at session end."""
    started: list[Sshd] = []
    outside: list[Path] = []

    def start(extra: str = "", user: str | None = None, owner: str | None = None) -> Sshd:
        base = tmp_path_factory.mktemp("sshd")
        root = base / "root"
        root.mkdir()
        if owner is not None:
            # Another user cannot traverse pytest's private temp dir: use one it can reach.
            root = Path(tempfile.mkdtemp(prefix="mlartifacts-sftp-"))
            outside.append(root)
            root.chmod(0o755)
            shutil.chown(root, owner, owner)
        host_key = _keygen(base / "host_ed25519", "ed25519")
        (base / "authorized_keys").write_text(
            "".join(key.with_suffix(".pub").read_text() for key in client_keys.values())
        )
        port = free_port()
        config = base / "sshd_config"
        config.write_text(
            # sshd keeps the first value of each keyword: the test's own lines come first.
            f"""{extra}
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {base}/sshd.pid
AuthorizedKeysFile {base}/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
Subsystem sftp internal-sftp
ForceCommand internal-sftp -l INFO -d {root}
"""
        )
        subprocess.run([sshd_binary, "-t", "-f", str(config)], check=True)
        log = base / "sshd.log"
        process = ServerProcess([sshd_binary, "-D", "-e", "-f", str(config)], log).start()
        server = Sshd(port, root, base, log, host_key, user or getpass.getuser(), process, dict(client_keys))
        started.append(server)
        wait_for(tcp_open(port), 20, proc=process, what="sshd")
        return server

    try:
        yield start
    finally:
        close_all()  # disconnect before sshd goes, or keepalives hit a dead ProxyCommand
        for server in started:
            server.stop()
        for path in outside:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def sshd(start_sshd: Callable[..., Sshd]) -> Sshd:
    return start_sshd()


@pytest.fixture(scope="session")
def ssh_files(tmp_path_factory: pytest.TempPathFactory, sshd: Sshd) -> tuple[Path, Path]:
    """An SSH config with the alias and a known_hosts holding the session sshd's key."""
    base = tmp_path_factory.mktemp("ssh-files")
    config = base / "config"
    config.write_text(
        f"""Host {ALIAS}
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.keys["ed25519"]}
    IdentitiesOnly yes

Host rsa-test
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.keys["rsa"]}
    IdentitiesOnly yes
"""
    )
    known_hosts = base / "known_hosts"
    known_hosts.write_text(sshd.host_key_line())
    return config, known_hosts


@pytest.fixture(autouse=True)
def _ssh_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the plugin at this session's SSH config and known_hosts (not ~/.ssh)."""
    for name in list(os.environ):
        if name.startswith("MLARTIFACTS_SFTP_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no developer's agent keys in the tests
    if "ssh_files" in request.fixturenames or "sftp_uri" in request.fixturenames:
        config, known_hosts = request.getfixturevalue("ssh_files")
        monkeypatch.setenv("MLARTIFACTS_SFTP_CONFIG", str(config))
        monkeypatch.setenv("MLARTIFACTS_SFTP_KNOWN_HOSTS", str(known_hosts))


@pytest.fixture
def sftp_uri(sshd: Sshd, ssh_files: tuple[Path, Path]) -> str:
    """A fresh directory on the session sshd, named through the config alias."""
    return f"sftp://{ALIAS}{sshd.root}/{uuid.uuid4().hex}"
