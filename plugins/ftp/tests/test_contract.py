"""The ftp backend passes the whole contract suite on pyftpdlib (MLSD), vsftpd (LIST only), and
over FTPS on both (vsftpd insists that data connections resume the control connection's TLS session)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from mlartifacts.testing.contract import ArtifactStoreContract

if TYPE_CHECKING:
    from conftest import FtpServer


class TestPyftpdlib(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, pyftpd_uri: str) -> str:
        return pyftpd_uri  # a password with ':', '@', '/', '%' and a space, URL-encoded


class TestVsftpd(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, vsftpd_uri: str) -> str:
        return vsftpd_uri  # anonymous login; no MLSD, so listings parse LIST


class TestFtps(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, pyftpd: FtpServer, monkeypatch: pytest.MonkeyPatch) -> str:
        if pyftpd.cert is None:
            pytest.skip("pyOpenSSL is missing, so pyftpdlib cannot serve TLS: scripts/install installs it")
        monkeypatch.setenv("MLARTIFACTS_FTP_CA_FILE", str(pyftpd.cert))
        return pyftpd.uri(f"tls/{uuid.uuid4().hex}", scheme="ftps")


class TestVsftpdFtps(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, vsftpd_tls: FtpServer, monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setenv("MLARTIFACTS_FTP_CA_FILE", str(vsftpd_tls.cert))
        return vsftpd_tls.uri(f"pub/{uuid.uuid4().hex}", scheme="ftps", user="")
