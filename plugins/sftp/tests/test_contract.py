"""The sftp backend passes the whole contract suite against a real OpenSSH sshd."""

from __future__ import annotations

import pytest

from mlartifacts.testing.contract import ArtifactStoreContract


class TestSftp(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, sftp_uri: str) -> str:
        return sftp_uri  # sftp://<ssh-config alias>/<fresh directory>
