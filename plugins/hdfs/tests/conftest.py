"""The session's HDFS: a Hadoop 2.7.3 NameNode and DataNode on 127.0.0.1 (see hdfs_cluster.py).

The tests' process gets the client setup a user would have (``JAVA_HOME``,
``ARROW_LIBHDFS_DIR``, ``CLASSPATH`` with every jar, ``LIBHDFS_OPTS``): libhdfs starts
its JVM inside this process at the first connection, reading them then.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # hdfs_cluster, shared with benchmarks/hdfs_cluster.py

from hdfs_cluster import TOOLS, HdfsCluster, java_home, start_cluster

INSTALL = "scripts/install fetches and builds it (plugins/hdfs/ci/install)"

# pyarrow carries cloud filesystems too: none of them may probe a metadata address here.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("NO_GCE_CHECK", "True")
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:1")
os.environ.setdefault("GCE_METADATA_IP", "127.0.0.1:1")


@pytest.fixture(scope="session")
def hdfs_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HdfsCluster]:
    java = java_home()
    if java is None:
        pytest.skip(f"the HDFS test cluster is not installed in {TOOLS}: {INSTALL}")
    with start_cluster(tmp_path_factory.mktemp("hdfs"), java) as cluster:
        # Every test user may write below /tests (permissions are on).
        cluster.shell("-mkdir", "-p", "/tests")
        cluster.shell("-chmod", "1777", "/tests")
        yield cluster


@pytest.fixture(scope="session")
def hdfs_client_env(hdfs_cluster: HdfsCluster) -> Iterator[HdfsCluster]:
    """This process set up as an HDFS client of the session's cluster (for the whole session).

    The JVM libhdfs starts reads these once, so they stay set until the session ends.
    """
    from mlartifacts_hdfs._fs import close_all

    with pytest.MonkeyPatch.context() as patch:
        for name, value in hdfs_cluster.client_env.items():
            patch.setenv(name, value)
        try:
            yield hdfs_cluster
        finally:
            close_all()  # before the cluster stops: a client left open would retry it


@pytest.fixture
def hdfs(hdfs_client_env: HdfsCluster, monkeypatch: pytest.MonkeyPatch) -> HdfsCluster:
    """The cluster, with no HDFS setting of the developer's in the environment."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_KERBEROS_", "MLFLOW_PYARROW_", "MLARTIFACTS_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", raising=False)
    return hdfs_client_env
