"""Against a real Kerberized cluster, when one is configured: this session's cluster cannot be one.

Set ``MLARTIFACTS_TEST_HDFS_KERBEROS_URI`` (a writable ``hdfs://`` directory),
``MLFLOW_KERBEROS_TICKET_CACHE`` (from ``kinit -c``), ``MLFLOW_KERBEROS_USER`` (the
principal), and the client setup (``JAVA_HOME``, ``ARROW_LIBHDFS_DIR``, ``CLASSPATH``
with the cluster's configuration). It runs in its own process: libhdfs' JVM would
otherwise keep this session's cluster's CLASSPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

URI = os.environ.get("MLARTIFACTS_TEST_HDFS_KERBEROS_URI")

PROBE = """
import sys, uuid
from mlartifacts import ArtifactStore
from mlartifacts.errors import NotFound
with ArtifactStore(f"{sys.argv[1].rstrip('/')}/{uuid.uuid4().hex}") as store:
    store.write_bytes("kerberos/check.bin", b"signed in" * 100000)
    assert store.read_bytes("kerberos/check.bin") == b"signed in" * 100000
    assert [e.path for e in store.list_artifacts("kerberos")] == ["kerberos/check.bin"]
    store.delete("")
    try:
        store.stat("kerberos/check.bin")
        raise SystemExit("still there after delete")
    except NotFound:
        pass
print("ok")
"""


@pytest.mark.skipif(
    not URI or not os.environ.get("MLFLOW_KERBEROS_TICKET_CACHE"),
    reason="no Kerberized HDFS configured "
    "(MLARTIFACTS_TEST_HDFS_KERBEROS_URI and MLFLOW_KERBEROS_TICKET_CACHE)",
)
def test_round_trip_on_a_kerberized_cluster() -> None:
    assert URI is not None
    done = subprocess.run(
        [sys.executable, "-c", PROBE, URI], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
