"""SFTP specifics against a real sshd: host keys, key and password logins, ~/.ssh/config,
connection reuse, server session limits, transfers cut off midway, lazy import."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import (
    InvalidPath,
    InvalidUri,
    NotFound,
    PermissionDenied,
    TransientError,
    Unauthenticated,
)
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.pool import close_all
from mlartifacts.testing.contract import random_bytes, write_tree
from mlartifacts_sftp import HostKeyError

if TYPE_CHECKING:
    from conftest import Sshd

ALIAS = "sftp-test"
QUICK = Settings(retry_backoff=0.01, retry_backoff_max=0.1)


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def round_trip(uri: str, settings: Settings = QUICK) -> None:
    with ArtifactStore(uri, settings=settings) as store:
        store.write_bytes("model/weights.bin", b"weights")
        assert store.plugin == "sftp"
        assert store.read_bytes("model/weights.bin") == b"weights"
        assert [(e.path, e.file_size) for e in store.list_artifacts("model")] == [("model/weights.bin", 7)]


@pytest.fixture
def known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ssh_files: tuple[Path, Path]) -> Path:
    """A known_hosts of the test's own, in use for this test."""
    path = tmp_path / "known_hosts"
    path.write_text("")
    monkeypatch.setenv("MLARTIFACTS_SFTP_KNOWN_HOSTS", str(path))
    return path


# -- logins --------------------------------------------------------------------------------


def test_ed25519_key_through_a_config_alias(sftp_uri: str, sshd: Sshd) -> None:
    # The URI names only the alias: HostName, Port, User and IdentityFile come from the config.
    assert sftp_uri.startswith(f"sftp://{ALIAS}/")
    round_trip(sftp_uri)
    stored = sshd.root / sftp_uri.rsplit("/", 1)[-1] / "model" / "weights.bin"
    assert stored.read_bytes() == b"weights"


def test_rsa_key(sshd: Sshd, ssh_files: tuple[Path, Path]) -> None:
    round_trip(f"sftp://rsa-test{sshd.root}/{uuid.uuid4().hex}")


def test_defaults_come_from_home(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no MLARTIFACTS_SFTP_* settings, ~/.ssh is used as ssh uses it."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(sshd.keys["ed25519"], home / ".ssh" / "id_ed25519")  # found without any config
    (home / ".ssh" / "known_hosts").write_text(sshd.host_key_line())
    (home / ".ssh" / "config").write_text(f"Host home-alias\n    HostName 127.0.0.1\n    Port {sshd.port}\n")
    monkeypatch.setenv("HOME", str(home))
    round_trip(f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{sshd.root}/{uuid.uuid4().hex}")
    round_trip(f"sftp://home-alias{sshd.root}/{uuid.uuid4().hex}")


def test_key_from_ssh_agent(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No key file anywhere: the key is only in an ssh-agent (started here, stopped by PID)."""
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent not found: it comes with openssh-client (scripts/install)")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text(sshd.host_key_line())
    monkeypatch.setenv("HOME", str(home))
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", str(sshd.keys["rsa"])], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        round_trip(f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{sshd.root}/{uuid.uuid4().hex}")
    finally:
        agent.terminate()
        agent.wait(10)


def test_wrong_key_is_unauthenticated(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = tmp_path / "id_stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    (tmp_path / "config").write_text(
        f"Host stranger\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {stranger}\n"
        "  IdentitiesOnly yes\n"
    )
    (tmp_path / "known_hosts").write_text(sshd.host_key_line())
    monkeypatch.setenv("MLARTIFACTS_SFTP_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("MLARTIFACTS_SFTP_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    store = ArtifactStore(f"sftp://stranger{sshd.root}/x", settings=QUICK)
    with store, pytest.raises(Unauthenticated, match="authentication failed"):
        store.list_artifacts()


@pytest.fixture(scope="module")
def password_user() -> Iterator[tuple[str, str]]:
    """A temporary system user with a password (deleted afterwards)."""
    if shutil.which("useradd") is None or os.geteuid() != 0:
        pytest.skip("needs root and useradd to create a temporary user with a password")
    name = f"mlart{secrets.token_hex(3)}"
    password = "p@ss:w/rd " + secrets.token_hex(4)  # characters that must be URL-encoded
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True)
        yield name, password
    finally:
        removed = subprocess.run(["userdel", name], capture_output=True, text=True)
        assert removed.returncode == 0, f"temporary user {name} not removed: {removed.stderr}"


def test_password_in_the_uri(
    start_sshd: Callable[..., Sshd], password_user: tuple[str, str], known_hosts: Path
) -> None:
    name, password = password_user
    server = start_sshd("PasswordAuthentication yes", user=name, owner=name)
    try:
        _password_logins(server, name, password, known_hosts)
    finally:
        server.stop()  # its sessions run as the temporary user, which is deleted next


def _password_logins(server: Sshd, name: str, password: str, known_hosts: Path) -> None:
    from urllib.parse import quote

    known_hosts.write_text(server.host_key_line())
    secret = quote(password, safe="")
    uri = f"sftp://{name}:{secret}@127.0.0.1:{server.port}{server.root}/{uuid.uuid4().hex}"
    round_trip(uri)
    with ArtifactStore(uri, settings=QUICK) as store:
        assert password not in repr(store) and secret not in store.backend.where("x")
    wrong = f"sftp://{name}:wrong@127.0.0.1:{server.port}{server.root}/x"
    store = ArtifactStore(wrong, settings=QUICK)
    with store, pytest.raises(Unauthenticated) as caught:
        store.stat()
    assert ":wrong@" not in str(caught.value)
    # The user may not write into a directory it does not own.
    locked = server.root / "locked"
    locked.mkdir(mode=0o755)
    store = ArtifactStore(f"sftp://{name}:{secret}@127.0.0.1:{server.port}{locked}", settings=QUICK)
    with store, pytest.raises(PermissionDenied):
        store.write_bytes("x.txt", b"x")


RELAY = """
import os, socket, sys, threading
with open(sys.argv[3], "a") as log:
    log.write("relayed\\n")
upstream = socket.create_connection((sys.argv[1], int(sys.argv[2])))

def pump_up():
    while data := os.read(0, 65536):
        upstream.sendall(data)
    upstream.shutdown(socket.SHUT_WR)

threading.Thread(target=pump_up, daemon=True).start()
while data := upstream.recv(65536):
    os.write(1, data)
"""


def test_proxy_command_from_the_config(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    relay, marker = tmp_path / "relay.py", tmp_path / "relayed.log"
    relay.write_text(RELAY)
    (tmp_path / "config").write_text(
        f"Host via-proxy\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.keys['ed25519']}\n  IdentitiesOnly yes\n"
        f"  ProxyCommand {sys.executable} {relay} %h %p {marker}\n"
    )
    (tmp_path / "known_hosts").write_text(sshd.host_key_line())
    monkeypatch.setenv("MLARTIFACTS_SFTP_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("MLARTIFACTS_SFTP_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    zombies_before = zombie_children()
    round_trip(f"sftp://via-proxy{sshd.root}/{uuid.uuid4().hex}")
    assert marker.read_text() == "relayed\n"
    close_all()  # the pooled connection goes, and its ProxyCommand process is reaped with it
    assert zombie_children() == zombies_before


def zombie_children() -> set[int]:
    """PIDs of this process's children that exited and were never waited for."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def test_writing_over_a_directory_is_refused(sftp_uri: str) -> None:
    with ArtifactStore(sftp_uri, settings=QUICK) as store:
        store.write_bytes("d/x.txt", b"x")
        with pytest.raises(InvalidPath, match="directory"):
            store.write_bytes("d", b"y")
        assert store.read_bytes("d/x.txt") == b"x"
        assert [e.path for e in store.list_artifacts()] == ["d"]


# -- host keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["none", "without port"])
def test_unknown_host_key_is_refused_with_advice(sshd: Sshd, known_hosts: Path, entry: str) -> None:
    if entry == "without port":
        # OpenSSH files a non-22 port as [host]:port; a bare host entry is another server.
        known_hosts.write_text(sshd.host_key_line().replace(f"[127.0.0.1]:{sshd.port}", "127.0.0.1"))
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(sshd.host_key.with_suffix(".pub"))], capture_output=True, text=True
    ).stdout.split()[1]
    store = ArtifactStore(f"sftp://{ALIAS}{sshd.root}/x", settings=QUICK)
    with store, pytest.raises(HostKeyError) as caught:
        store.list_artifacts()
    message = str(caught.value)
    assert isinstance(caught.value, Unauthenticated)
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {known_hosts}" in message
    assert fingerprint in message
    assert f"[127.0.0.1]:{sshd.port}" in message


def test_changed_host_key_is_refused(sshd: Sshd, known_hosts: Path, tmp_path: Path) -> None:
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    store = ArtifactStore(f"sftp://{ALIAS}{sshd.root}/x", settings=QUICK)
    with store, pytest.raises(HostKeyError, match="CHANGED") as caught:
        store.stat()
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in str(caught.value)


def test_hashed_known_hosts_entry(sshd: Sshd, known_hosts: Path) -> None:
    known_hosts.write_text(sshd.host_key_line())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known_hosts)], check=True, capture_output=True)
    assert "127.0.0.1" not in known_hosts.read_text()
    round_trip(f"sftp://{ALIAS}{sshd.root}/{uuid.uuid4().hex}")


# -- URIs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["sftp:///no/host", "sftp://h:port/x", "sftp://h/x?y=1", "sftp://h/a/../b"])
def test_unusable_uris(uri: str) -> None:
    with pytest.raises(InvalidUri):
        ArtifactStore(uri)


def test_home_relative_path(sshd: Sshd, ssh_files: tuple[Path, Path]) -> None:
    # /~/ is the login directory (here internal-sftp -d points it at the test root).
    name = uuid.uuid4().hex
    round_trip(f"sftp://{ALIAS}/~/{name}")
    assert (sshd.root / name / "model" / "weights.bin").read_bytes() == b"weights"


# -- pooling ----------------------------------------------------------------------------------


def test_connections_are_reused(
    sshd: Sshd, ssh_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLARTIFACTS_SFTP_TIMEOUT", "29.5")  # a pool of its own for this test
    files = {f"d{i % 4}/f{i}.txt": f"{i}".encode() for i in range(40)}
    write_tree(tmp_path / "src", files)
    logins = sshd.log_count("Accepted publickey")
    with ArtifactStore(f"sftp://{ALIAS}{sshd.root}/{uuid.uuid4().hex}", settings=QUICK) as store:
        store.log_artifacts(str(tmp_path / "src"))
        assert len(list(store.iter_files())) == 40
        store.download_artifacts("", str(tmp_path / "dst"))
        store.delete_artifacts("d0")
    # 40 uploads, 40 downloads, listings and a delete: one SSH login, channels reused.
    assert sshd.log_count("Accepted publickey") - logins == 1


def test_server_session_limit_is_respected(
    start_sshd: Callable[..., Sshd],
    ssh_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = start_sshd("MaxSessions 2")
    known = tmp_path / "known_hosts"
    known.write_text(server.host_key_line())
    monkeypatch.setenv("MLARTIFACTS_SFTP_KNOWN_HOSTS", str(known))
    monkeypatch.setenv("MLARTIFACTS_SFTP_MAX_SESSIONS", "6")  # more than one connection may carry
    files = {f"f{i}.bin": random_bytes(50_000, seed=i) for i in range(30)}
    write_tree(tmp_path / "src", files)
    uri = f"sftp://{server.user}@127.0.0.1:{server.port}{server.root}/{uuid.uuid4().hex}"
    config = tmp_path / "config"
    config.write_text(f"Host 127.0.0.1\n  IdentityFile {server.keys['ed25519']}\n  IdentitiesOnly yes\n")
    monkeypatch.setenv("MLARTIFACTS_SFTP_CONFIG", str(config))
    with ArtifactStore(uri, settings=QUICK.replace(max_workers=6, max_retries=0)) as store:
        store.log_artifacts(str(tmp_path / "src"))
        out = store.download_artifacts("", str(tmp_path / "dst"))
    assert {p.name: p.read_bytes() for p in Path(out).iterdir()} == files
    assert server.log_count("no more sessions") >= 1  # the limit was reached, and worked around:
    assert server.log_count("Accepted publickey") >= 2  # further channels went to new connections


# -- failures midway ----------------------------------------------------------------------------


class KillConnectionsOnce:
    """A progress listener that kills the server side of every SSH connection once, midway."""

    def __init__(self, server: Sshd) -> None:
        self.server = server
        self.sent = 0
        self.killed = False

    def begin(self, total_bytes: int | None, total_files: int) -> None: ...
    def file_done(self, path: str) -> None: ...
    def end(self) -> None: ...

    def update(self, nbytes: int) -> None:
        self.sent += nbytes
        if not self.killed and self.sent >= 2 * 1024 * 1024:
            self.killed = True
            for pid in self.server.connection_pids():
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("retries", [0, 3])
def test_connection_killed_midway(
    start_sshd: Callable[..., Sshd],
    known_hosts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    retries: int,
) -> None:
    server = start_sshd()  # its own sshd: killing its connections disturbs no other test
    known_hosts.write_text(server.host_key_line())
    config = tmp_path / "config"
    config.write_text(f"Host 127.0.0.1\n  IdentityFile {server.keys['ed25519']}\n  IdentitiesOnly yes\n")
    monkeypatch.setenv("MLARTIFACTS_SFTP_CONFIG", str(config))
    data = random_bytes(16 * 1024 * 1024, seed=9)
    (tmp_path / "model.bin").write_bytes(data)
    directory = server.root / uuid.uuid4().hex
    uri = f"sftp://{server.user}@127.0.0.1:{server.port}{directory}"
    with ArtifactStore(uri, settings=QUICK.replace(max_retries=retries)) as store:
        store.write_bytes("model.bin", b"previous version")
        killer = KillConnectionsOnce(server)
        if retries == 0:
            with pytest.raises(TransientError):
                store.upload_file(str(tmp_path / "model.bin"), "model.bin", progress=killer)
            assert store.read_bytes("model.bin") == b"previous version"  # never partial
        else:
            store.upload_file(str(tmp_path / "model.bin"), "model.bin", progress=killer)
            assert (directory / "model.bin").read_bytes() == data  # retried on a new connection
    assert killer.killed
    assert temporaries(directory) == []  # the cut-off temporary was removed over a new connection


def test_broken_stream_keeps_the_previous_version(sftp_uri: str, sshd: Sshd) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionResetError("the client went away")

    with ArtifactStore(sftp_uri, settings=QUICK) as store:
        store.write_bytes("a.bin", b"previous")
        with pytest.raises(ConnectionResetError):
            store.write("a.bin", chunks())
        assert store.read_bytes("a.bin") == b"previous"
    assert temporaries(sshd.root / sftp_uri.rsplit("/", 1)[-1]) == []


def test_reading_part_of_a_file_then_going_on(sftp_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLARTIFACTS_SFTP_MAX_SESSIONS", "1")  # the next call needs the same slot
    data = random_bytes(3 * 1024 * 1024, seed=3)
    with ArtifactStore(sftp_uri, settings=QUICK) as store:
        store.write_bytes("big.bin", data)
        stream = store.read("big.bin", 1000)
        first = next(stream)
        assert first and data[1000:].startswith(first)
        stream.close()  # abandoned midway: the channel is dropped, the slot freed
        assert b"".join(store.read("big.bin", 5, 10)) == data[5:15]
        with pytest.raises(NotFound):
            store.read_bytes("missing.bin")
        assert store.stat("big.bin").file_size == len(data)


# -- packaging ----------------------------------------------------------------------------------


def test_paramiko_is_imported_only_when_an_sftp_uri_is_used(tmp_path: Path) -> None:
    probe = """
import json, sys
import mlartifacts, mlartifacts_sftp
from mlartifacts import default_registry
records = {r.name: r for r in default_registry().records()}
print(json.dumps({"status": records["sftp"].status, "schemes": list(records["sftp"].schemes),
                  "paramiko": "paramiko" in sys.modules}))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {"status": "loaded", "schemes": ["sftp"], "paramiko": False}
    cli = Path(sys.executable).parent / "mlartifacts"
    listed = subprocess.run([str(cli), "plugins", "--json"], capture_output=True, text=True, check=True)
    row = {r["name"]: r for r in json.loads(listed.stdout)}["sftp"]
    assert row["status"] == "loaded" and row["distribution"] == "mlartifacts-sftp"
