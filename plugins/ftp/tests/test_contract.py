"""The ftp backend passes the whole contract suite on pyftpdlib (MLSD), vsftpd (LIST only), and
over FTPS on both (vsftpd insists that data connections resume the control connection's TLS session)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt, flip_byte_in_place

if TYPE_CHECKING:
    from conftest import FtpServer


def on_disk(top: Path) -> Corrupt:
    """Flip a byte of the file the server serves from ``top`` (what its user sees as /) on this machine."""

    def flip(store: ArtifactStore, path: str) -> None:
        flip_byte_in_place(top / store.backend.root.path(path).lstrip("/"))

    return flip


class TestPyftpdlib(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, pyftpd_uri: str) -> str:
        return pyftpd_uri  # a password with ':', '@', '/', '%' and a space, URL-encoded

    @pytest.fixture
    def corrupt(self, pyftpd: FtpServer) -> Corrupt:
        return on_disk(pyftpd.root)


class TestVsftpd(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, vsftpd_uri: str) -> str:
        return vsftpd_uri  # anonymous login; no MLSD, so listings parse LIST

    @pytest.fixture
    def corrupt(self, vsftpd: FtpServer) -> Corrupt:
        return on_disk(vsftpd.root.parent)  # anonymous sees anon_root as /; root is its pub/


class TestFtps(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, pyftpd: FtpServer, monkeypatch: pytest.MonkeyPatch) -> str:
        if pyftpd.cert is None:
            pytest.skip("pyOpenSSL is missing, so pyftpdlib cannot serve TLS: scripts/install installs it")
        monkeypatch.setenv("MLARTIFACTS_FTP_CA_FILE", str(pyftpd.cert))
        return pyftpd.uri(f"tls/{uuid.uuid4().hex}", scheme="ftps")

    @pytest.fixture
    def corrupt(self, pyftpd: FtpServer) -> Corrupt:
        return on_disk(pyftpd.root)


class TestVsftpdFtps(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, vsftpd_tls: FtpServer, monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setenv("MLARTIFACTS_FTP_CA_FILE", str(vsftpd_tls.cert))
        return vsftpd_tls.uri(f"pub/{uuid.uuid4().hex}", scheme="ftps", user="")

    @pytest.fixture
    def corrupt(self, vsftpd_tls: FtpServer) -> Corrupt:
        return on_disk(vsftpd_tls.root.parent)
