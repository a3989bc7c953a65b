"""Real FTP servers on 127.0.0.1: pyftpdlib (MLSD, TLS) and vsftpd (no MLSD: the LIST path).

pyftpdlib runs ``pyftpd_server.py`` (a password user, a read-only user, a writable
anonymous area, AUTH TLS with a self-signed certificate when pyOpenSSL is there).
vsftpd runs from Debian's package with its own config, anonymous and writable,
standalone in the foreground. Every process is stopped by PID at session end.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, tcp_open, wait_for

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "tester", "s3cret:p@ss w/rd%"  # URL-encoded in URIs: tests the decoding
READER, READER_PASSWORD = "reader", "reader"  # may list and read, not write

INSTALL_VSFTPD = "vsftpd not found: scripts/install installs it (apt-get install vsftpd)"


@dataclass
class FtpServer:
    """A running FTP server, where its files are on disk, and its log."""

    port: int
    root: Path  # the directory the logged-in user sees as /
    log: Path
    process: ServerProcess
    cert: Path | None = None

    def uri(self, path: str = "", scheme: str = "ftp", user: str = USER, password: str = PASSWORD) -> str:
        login = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        return f"{scheme}://{login}127.0.0.1:{self.port}/{path}"

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def session_pids(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN), so hostname checks pass when it is trusted."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
def pyftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    if importlib.util.find_spec("pyftpdlib") is None:
        pytest.skip("pyftpdlib not installed: scripts/install installs the ftp plugin's test group")
    base = tmp_path_factory.mktemp("pyftpd")
    root = base / "root"
    root.mkdir()
    port = free_port()
    cmd = [sys.executable, str(HERE / "pyftpd_server.py"), str(port), str(root)]
    cmd += [USER, PASSWORD, READER, READER_PASSWORD]
    cert = None
    if importlib.util.find_spec("OpenSSL") is not None:  # pyftpdlib's TLS handler needs pyOpenSSL
        cert, key = _self_signed(base)
        cmd += [str(cert), str(key)]
    # SIGINT: pyftpdlib's serve_forever closes its sockets on KeyboardInterrupt.
    with ServerProcess(cmd, base / "pyftpd.log", stop_signal=signal.SIGINT) as process:
        wait_for(tcp_open(port), 20, proc=process, what="pyftpdlib")
        yield FtpServer(port, root, base / "pyftpd.log", process, cert)


@pytest.fixture(scope="session")
def start_vsftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., FtpServer]]:
    """Start a vsftpd (anonymous, writable under /pub) with extra config lines."""
    binary = find_executable("vsftpd", "/usr/sbin")
    if binary is None:
        pytest.skip(INSTALL_VSFTPD)
    if os.geteuid() != 0:
        pytest.skip("vsftpd needs root (it chroots and switches to the 'ftp' user)")
    empty = Path("/var/run/vsftpd/empty")
    made_empty = not empty.exists()
    empty.mkdir(parents=True, exist_ok=True)
    started: list[ServerProcess] = []

    def start(extra: str = "") -> FtpServer:
        base = tmp_path_factory.mktemp("vsftpd")
        anon_root = base / "anon_root"  # vsftpd refuses a chroot its user can write to
        anon_root.mkdir(mode=0o755)
        (anon_root / "pub").mkdir()
        shutil.chown(anon_root / "pub", "ftp", "ftp")
        port = free_port()
        pasv = random.randrange(40000, 60000, 100)
        config = base / "vsftpd.conf"
        config.write_text(
            f"""listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
seccomp_sandbox=NO
pasv_enable=YES
pasv_min_port={pasv}
pasv_max_port={pasv + 99}
pasv_address=127.0.0.1
connect_from_port_20=NO
secure_chroot_dir={empty}
pam_service_name=vsftpd
local_enable=NO
write_enable=YES
anonymous_enable=YES
no_anon_password=YES
anon_root={anon_root}
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_world_readable_only=NO
anon_umask=022
dual_log_enable=NO
xferlog_enable=YES
xferlog_std_format=NO
vsftpd_log_file={base}/vsftpd.log
{extra}
"""
        )
        log = base / "vsftpd.log"
        process = ServerProcess([binary, str(config)], base / "vsftpd.out").start()
        started.append(process)
        wait_for(tcp_open(port), 20, proc=process, what="vsftpd")
        log.touch()
        return FtpServer(port, anon_root / "pub", log, process)

    try:
        yield start
    finally:
        for process in started:
            # Sessions are forked children; they outlive the listener unless stopped too.
            children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
            process.stop()
            for pid in children.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except ProcessLookupError:
                    pass
        if made_empty:
            shutil.rmtree(empty, ignore_errors=True)


@pytest.fixture(scope="session")
def vsftpd(start_vsftpd: Callable[..., FtpServer]) -> FtpServer:
    return start_vsftpd()


@pytest.fixture(scope="session")
def vsftpd_tls(start_vsftpd: Callable[..., FtpServer], tmp_path_factory: pytest.TempPathFactory) -> FtpServer:
    """vsftpd requiring TLS for anonymous logins and data (and TLS session reuse, its default)."""
    if importlib.util.find_spec("cryptography") is None:
        pytest.skip("cryptography is missing (it makes the test certificate): scripts/install installs it")
    cert, key = _self_signed(tmp_path_factory.mktemp("vsftpd-tls"))
    server = start_vsftpd(
        f"ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n"
        f"rsa_cert_file={cert}\nrsa_private_key_file={key}\n"
    )
    server.cert = cert
    return server


@pytest.fixture(autouse=True)
def _ftp_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MLARTIFACTS_FTP_"):
            monkeypatch.delenv(name)


@pytest.fixture
def pyftpd_uri(pyftpd: FtpServer) -> str:
    """A fresh directory on pyftpdlib, as the password user."""
    return pyftpd.uri(f"runs/{uuid.uuid4().hex}")


@pytest.fixture
def vsftpd_uri(vsftpd: FtpServer) -> str:
    """A fresh directory on vsftpd, anonymous."""
    return vsftpd.uri(f"pub/{uuid.uuid4().hex}", user="")
