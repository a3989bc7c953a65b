"""The sftp backend passes the whole contract suite against a real OpenSSH sshd."""

from __future__ import annotations

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.testing.contract import ArtifactStoreContract, Corrupt, flip_byte_in_place


class TestSftp(ArtifactStoreContract):
    @pytest.fixture
    def artifact_uri(self, sftp_uri: str) -> str:
        return sftp_uri  # sftp://<ssh-config alias>/<fresh directory>

    @pytest.fixture
    def corrupt(self) -> Corrupt:
        def flip(store: ArtifactStore, path: str) -> None:
            flip_byte_in_place(store.backend.root.path(path))  # the session's sshd serves this disk

        return flip
