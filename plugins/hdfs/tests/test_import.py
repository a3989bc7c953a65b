"""pyarrow (and its JVM) is loaded only when an HDFS URI is used, never at import."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, shutil, sys, tempfile
import mlartifacts, mlartifacts_hdfs
from mlartifacts import ArtifactStore, default_registry
default_registry().records()
d = tempfile.mkdtemp()
with ArtifactStore(d) as store:
    store.write_bytes("a.txt", b"a")
shutil.rmtree(d)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pyarrow")))
"""


def test_pyarrow_not_imported_by_the_plugin() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_plugin_is_registered() -> None:
    from mlartifacts import default_registry

    record = {r.name: r for r in default_registry().records()}["hdfs"]
    assert record.error is None
    assert set(record.schemes) == {"hdfs", "viewfs"}
