"""FTP specifics against real servers: MLSD and LIST listings, logins (password, anonymous,
bad), connection reuse and server limits, transfers cut off midway, ranged reads, FTPS."""

from __future__ import annotations

import ftplib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.cli import run
from mlartifacts.errors import (
    BackendError,
    InvalidPath,
    InvalidUri,
    NotFound,
    PermissionDenied,
    TransientError,
    Unauthenticated,
)
from mlartifacts.paths import TEMP_PREFIX
from mlartifacts.testing.contract import random_bytes, write_tree
from mlartifacts_ftp._errors import translate
from mlartifacts_ftp._listing import Entry, parse_list_line, parse_mlst
from mlartifacts_ftp._pool import pool_for
from mlartifacts_ftp._uri import parse_uri

if TYPE_CHECKING:
    from conftest import FtpServer

QUICK = Settings(retry_backoff=0.01, retry_backoff_max=0.1)


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture(params=["pyftpdlib", "vsftpd"])
def server(request: pytest.FixtureRequest) -> tuple[FtpServer, str]:
    """Each server with a fresh directory URI (password user on pyftpdlib, anonymous on vsftpd)."""
    if request.param == "pyftpdlib":
        ftp: FtpServer = request.getfixturevalue("pyftpd")
        return ftp, ftp.uri(f"runs/{uuid.uuid4().hex}")
    ftp = request.getfixturevalue("vsftpd")
    return ftp, ftp.uri(f"pub/{uuid.uuid4().hex}", user="")


# -- listings ---------------------------------------------------------------------------------


def test_mlsd_where_the_server_has_it_list_where_not(pyftpd: FtpServer, vsftpd: FtpServer) -> None:
    for ftp, uri, has_mlsd in (
        (pyftpd, pyftpd.uri(f"runs/{uuid.uuid4().hex}"), True),
        (vsftpd, vsftpd.uri(f"pub/{uuid.uuid4().hex}", user=""), False),
    ):
        with ArtifactStore(uri, settings=QUICK) as store:
            store.write_bytes("a.txt", b"12345")
            store.write_bytes(".hidden", b"12")  # LIST hides dot files unless asked (-a)
            store.write_bytes("sub dir/b c.txt", b"x")
            entries = [(e.path, e.is_dir, e.file_size) for e in store.list_artifacts()]
            assert entries == [(".hidden", False, 2), ("a.txt", False, 5), ("sub dir", True, None)], ftp
            assert store.stat("sub dir/b c.txt").file_size == 1
            with pool_for(store.backend.root).session() as connection:
                assert connection.mlst is has_mlsd


@pytest.mark.parametrize(
    ("line", "entry"),
    [
        ("-rw-r--r--    1 0        0            5 Nov 23 11:00 a.txt", Entry("a.txt", "file", 5)),
        ("drwxr-xr-x    2 ftp      ftp       4096 Nov  3  2025 sub dir", Entry("sub dir", "dir")),
        (
            "-rw-------    1 1001     1001  123456789 Jan 01 00:00  leading space",
            Entry(" leading space", "file", 123456789),
        ),
        ("lrwxrwxrwx    1 0        0            5 Nov 23 11:00 link -> a.txt", Entry("link", "link")),
        ("-rw-r--r--+   1 user     group        7 Feb 29 23:59 acl.bin", Entry("acl.bin", "file", 7)),
        ("11-23-26  10:00AM       <DIR>          Models", Entry("Models", "dir")),
        ("11-23-26  10:00AM                 1234 model v1.bin", Entry("model v1.bin", "file", 1234)),
        ("drwxr-xr-x    2 0        0         4096 Nov 23 11:00 .", None),
        ("total 12", None),
        ("srwxr-xr-x    1 0        0            0 Nov 23 11:00 socket", None),
    ],
)
def test_list_lines(line: str, entry: Entry | None) -> None:
    assert parse_list_line(line) == entry


def test_mlst_reply() -> None:
    reply = (
        "250-Listing /runs/m.bin\r\n type=file;size=42;modify=20261123110000; /runs/m.bin\r\n250 End MLST."
    )
    entry = parse_mlst(reply)
    assert entry is not None
    assert (entry.name, entry.kind, entry.size, entry.modified) == ("m.bin", "file", 42, 1795431600.0)


# -- logins -------------------------------------------------------------------------------------


def test_password_is_url_decoded_and_never_shown(pyftpd: FtpServer) -> None:
    uri = pyftpd.uri(f"runs/{uuid.uuid4().hex}")
    assert "%3A" in uri and "%40" in uri  # ':' and '@' in the password, encoded
    root = parse_uri(uri)
    assert root.password == "s3cret:p@ss w/rd%"
    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("x.txt", b"x")
        assert store.read_bytes("x.txt") == b"x"
        assert "s3cret" not in repr(store) and "s3cret" not in store.backend.where("x.txt")


def test_anonymous_login(pyftpd: FtpServer) -> None:
    name = uuid.uuid4().hex
    with ArtifactStore(pyftpd.uri(name, user=""), settings=QUICK) as store:
        store.write_bytes("m/x.txt", b"anonymous")
        assert parse_uri(store.uri).user == "anonymous"
    assert (pyftpd.root / "anon" / name / "m" / "x.txt").read_bytes() == b"anonymous"


@pytest.mark.parametrize("which", ["pyftpdlib", "vsftpd"])
def test_bad_credentials_quote_the_server(request: pytest.FixtureRequest, which: str) -> None:
    ftp: FtpServer = request.getfixturevalue("pyftpd" if which == "pyftpdlib" else "vsftpd")
    store = ArtifactStore(ftp.uri("x", user="tester", password="wrong"), settings=QUICK)
    with store, pytest.raises(Unauthenticated, match="530") as caught:
        store.list_artifacts()
    assert "wrong" not in str(caught.value)


def test_read_only_user_is_denied_writes(pyftpd: FtpServer) -> None:
    with ArtifactStore(pyftpd.uri(f"runs/{uuid.uuid4().hex}"), settings=QUICK) as writer:
        writer.write_bytes("kept.txt", b"kept")
        reader_uri = pyftpd.uri(writer.uri.split("/", 3)[3], user="reader", password="reader")
    with ArtifactStore(reader_uri, settings=QUICK) as reader:
        assert reader.read_bytes("kept.txt") == b"kept"
        with pytest.raises(PermissionDenied):
            reader.write_bytes("new.txt", b"x")
        with pytest.raises(PermissionDenied):
            reader.delete("kept.txt")
        assert reader.read_bytes("kept.txt") == b"kept"


def test_ftps_refuses_an_untrusted_certificate(pyftpd: FtpServer) -> None:
    if pyftpd.cert is None:
        pytest.skip("pyOpenSSL is missing, so pyftpdlib cannot serve TLS: scripts/install installs it")
    # MLARTIFACTS_FTP_CA_FILE is not set: the self-signed certificate is not trusted.
    store = ArtifactStore(pyftpd.uri("x", scheme="ftps"), settings=QUICK)
    with store, pytest.raises(BackendError, match="MLARTIFACTS_FTP_CA_FILE"):
        store.list_artifacts()


def test_plain_ftp_is_refused_where_tls_is_required(vsftpd_tls: FtpServer) -> None:
    store = ArtifactStore(vsftpd_tls.uri("pub/x", user=""), settings=QUICK)
    with (
        store,
        pytest.raises(Unauthenticated, match="530"),
    ):  # vsftpd: "Non-anonymous sessions must use encryption."
        store.list_artifacts()


# -- pooling ------------------------------------------------------------------------------------


def test_logins_are_reused(pyftpd: FtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLARTIFACTS_FTP_TIMEOUT", "59.5")  # a pool of its own for this test
    files = {f"d{i % 4}/f{i}.txt": f"{i}".encode() for i in range(40)}
    write_tree(tmp_path / "src", files)
    before = pyftpd.log_count("USER 'tester' logged in")
    with ArtifactStore(pyftpd.uri(f"runs/{uuid.uuid4().hex}"), settings=QUICK) as store:
        store.log_artifacts(str(tmp_path / "src"))
        assert len(list(store.iter_files())) == 40
        store.download_artifacts("", str(tmp_path / "dst"))
        store.delete_artifacts("d0")
    logins = pyftpd.log_count("USER 'tester' logged in") - before
    assert 1 <= logins <= 4  # MLARTIFACTS_FTP_MAX_CONNECTIONS, for 80 transfers (MLflow: one each)


def test_server_connection_limit_is_respected(
    start_vsftpd: Callable[..., FtpServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ftp = start_vsftpd("max_per_ip=2")
    monkeypatch.setenv("MLARTIFACTS_FTP_MAX_CONNECTIONS", "4")
    files = {f"f{i}.bin": random_bytes(20_000, seed=i) for i in range(20)}
    write_tree(tmp_path / "src", files)
    with ArtifactStore(ftp.uri(f"pub/{uuid.uuid4().hex}", user=""), settings=QUICK) as store:
        store.log_artifacts(str(tmp_path / "src"))
        out = store.download_artifacts("", str(tmp_path / "dst"))
        pool = pool_for(store.backend.root)
    assert {p.name: p.read_bytes() for p in Path(out).iterdir()} == files
    assert pool.max_size == 2  # lowered when vsftpd answered a third login with 421


def test_reading_part_of_a_file_then_going_on(
    server: tuple[FtpServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLARTIFACTS_FTP_MAX_CONNECTIONS", "1")  # every call reuses one connection
    _, uri = server
    data = random_bytes(3 * 1024 * 1024, seed=4)
    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("big.bin", data)
        assert store.capabilities.ranged_read  # REST STREAM
        stream = store.read("big.bin", 1000)
        first = next(stream)
        assert first and data[1000:].startswith(first)
        stream.close()  # abandoned midway: the transfer is ended, the connection kept in step
        assert b"".join(store.read("big.bin", 2 * 1024 * 1024, 10)) == data[2 * 1024 * 1024 :][:10]
        with pytest.raises(NotFound):
            store.read_bytes("missing.bin")
        assert store.stat("big.bin").file_size == len(data)


def test_ranged_read_without_rest(pyftpd: FtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server without REST is read from the start, the bytes before the offset dropped."""
    monkeypatch.setenv("MLARTIFACTS_FTP_MAX_CONNECTIONS", "1")
    monkeypatch.setenv("MLARTIFACTS_FTP_TIMEOUT", "58.5")  # a pool of its own: one connection
    data = random_bytes(1024 * 1024 + 5, seed=5)
    with ArtifactStore(pyftpd.uri(f"runs/{uuid.uuid4().hex}"), settings=QUICK) as store:
        store.write_bytes("b.bin", data)
        with pool_for(store.backend.root).session() as connection:
            connection.rest = False  # as if FEAT had not announced REST STREAM
        assert b"".join(store.read("b.bin", 300_000, 500_000)) == data[300_000:800_000]
        assert b"".join(store.read("b.bin", 1024 * 1024)) == data[1024 * 1024 :]
        with pool_for(store.backend.root).session() as connection:
            assert connection.rest is False  # the same connection served both reads


def test_writing_over_a_directory_is_refused(server: tuple[FtpServer, str]) -> None:
    _, uri = server
    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("d/x.txt", b"x")
        with pytest.raises(InvalidPath, match="directory"):
            store.write_bytes("d", b"y")
        assert store.read_bytes("d/x.txt") == b"x"
        assert [e.path for e in store.list_artifacts()] == ["d"]


# -- failures midway ----------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for p in found for child in (int(p), *_descendants(int(p)))]


class KillSessionsOnce:
    """A progress listener that kills vsftpd's session processes once, midway through a file."""

    def __init__(self, ftp: FtpServer) -> None:
        self.ftp = ftp
        self.sent = 0
        self.killed = False

    def begin(self, total_bytes: int | None, total_files: int) -> None: ...
    def file_done(self, path: str) -> None: ...
    def end(self) -> None: ...

    def update(self, nbytes: int) -> None:
        self.sent += nbytes
        if not self.killed and self.sent >= 2 * 1024 * 1024:
            self.killed = True
            for pid in _descendants(self.ftp.process.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.mark.parametrize("retries", [0, 3])
def test_connection_killed_midway(
    start_vsftpd: Callable[..., FtpServer], tmp_path: Path, retries: int
) -> None:
    ftp = start_vsftpd()  # its own server: killing its sessions disturbs no other test
    data = random_bytes(16 * 1024 * 1024, seed=8)
    (tmp_path / "model.bin").write_bytes(data)
    name = uuid.uuid4().hex
    with ArtifactStore(ftp.uri(f"pub/{name}", user=""), settings=QUICK.replace(max_retries=retries)) as store:
        store.write_bytes("model.bin", b"previous version")
        killer = KillSessionsOnce(ftp)
        if retries == 0:
            with pytest.raises(TransientError):
                store.upload_file(str(tmp_path / "model.bin"), "model.bin", progress=killer)
            assert store.read_bytes("model.bin") == b"previous version"  # never partial
        else:
            store.upload_file(str(tmp_path / "model.bin"), "model.bin", progress=killer)
            assert (ftp.root / name / "model.bin").read_bytes() == data  # retried on a new login
    assert killer.killed
    assert temporaries(ftp.root / name) == []  # the cut-off temporary was removed over a new login


def test_broken_stream_keeps_the_previous_version(server: tuple[FtpServer, str]) -> None:
    ftp, uri = server

    def chunks() -> Iterator[bytes]:
        yield b"x" * 300_000
        raise ConnectionResetError("the client went away")

    with ArtifactStore(uri, settings=QUICK) as store:
        store.write_bytes("a.bin", b"previous")
        with pytest.raises(ConnectionResetError):
            store.write("a.bin", chunks())
        assert store.read_bytes("a.bin") == b"previous"
    assert temporaries(ftp.root) == []


# -- errors and URIs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "on_550", "expected"),
    [
        (ftplib.error_perm("550 Failed to open file."), NotFound, NotFound),  # vsftpd, missing file
        (ftplib.error_perm("550 Permission denied."), NotFound, PermissionDenied),
        (ftplib.error_perm("550 Not enough privileges."), NotFound, PermissionDenied),  # pyftpdlib
        (ftplib.error_perm("550 No such file or directory."), PermissionDenied, NotFound),
        (ftplib.error_perm("550 Delete operation failed."), PermissionDenied, PermissionDenied),
        (ftplib.error_perm("530 Login incorrect."), NotFound, Unauthenticated),
        (ftplib.error_temp("421 Too many connections."), NotFound, TransientError),
        (ftplib.error_temp("426 Connection closed; transfer aborted."), NotFound, TransientError),
        (ftplib.error_temp("452 Insufficient storage."), NotFound, BackendError),
        (ftplib.error_perm("553 Could not create file."), NotFound, PermissionDenied),
        (EOFError(), NotFound, TransientError),
        (ConnectionResetError(104, "reset"), NotFound, TransientError),
    ],
)
def test_error_table(reply: Exception, on_550: type[Exception], expected: type[Exception]) -> None:
    error = translate(reply, "ftp://h/x", on_550)  # type: ignore[arg-type]
    assert type(error) is expected
    assert "ftp://h/x" in str(error)


@pytest.mark.parametrize("uri", ["ftp:///no-host", "ftp://h:port/x", "ftp://h/x?passive=1", "ftp://h/a/../b"])
def test_unusable_uris(uri: str) -> None:
    with pytest.raises(InvalidUri):
        ArtifactStore(uri)


def test_uri_defaults() -> None:
    root = parse_uri("ftp://example.org")
    assert (root.user, root.password, root.port, root.path, root.tls) == (
        "anonymous", "anonymous@", 21, "/", False,
    )  # fmt: skip
    assert parse_uri("ftps://u:p@h:2121/a/b/").display == "ftps://u@h:2121/a/b"


def test_stdlib_only_at_import_and_listed(tmp_path: Path) -> None:
    probe = """
import json, sys
import mlartifacts, mlartifacts_ftp
from mlartifacts import default_registry
record = {r.name: r for r in default_registry().records()}["ftp"]
sdks = {"pyftpdlib", "OpenSSL", "cryptography", "paramiko"}
third_party = sorted({m.split('.')[0] for m in sys.modules} & sdks)
print(json.dumps({"status": record.status, "schemes": list(record.schemes), "third_party": third_party}))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {"status": "loaded", "schemes": ["ftp", "ftps"], "third_party": []}


def test_a_file_changed_on_the_server_is_reported_as_changed(
    server: tuple[FtpServer, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Rewritten behind the store's back: its sidecar records another size, so it is stale, not current."""
    ftp, uri = server
    with ArtifactStore(uri) as store:
        store.write_bytes("m/model.bin", b"recorded bytes")
        store.write_bytes("m/other.bin", b"untouched")
        assert store.stat("m/model.bin").digest is not None
        name = uri.rstrip("/").rsplit("/", 1)[1]
        on_disk = next(p for p in ftp.root.rglob("model.bin") if name in p.parts)
        on_disk.write_bytes(b"bytes written by another tool")
        info = store.stat("m/model.bin")
        assert info.digest is None and info.stale_digest is not None
    assert run(["verify", "--json", uri]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(i["path"], i["problem"]) for i in report["issues"]] == [("m/model.bin", "changed")]
    assert report["verified_by_digest"] == 1 and report["unverifiable_by_digest"] == []
