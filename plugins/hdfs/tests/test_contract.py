"""The HDFS backend passes the whole contract suite against a real NameNode and DataNode."""

from __future__ import annotations

from typing import Any

import pytest

from mlartifacts.testing.contract import ArtifactStoreContract


class TestHdfs(ArtifactStoreContract):
    """A fresh directory below /tests for each test, on hdfs://127.0.0.1:<port>."""

    @pytest.fixture
    def artifact_uri(self, hdfs: Any) -> str:
        return hdfs.fresh_uri()
