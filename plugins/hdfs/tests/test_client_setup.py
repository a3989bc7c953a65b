"""A missing piece of the client setup is named, with how to fix it, before pyarrow is asked.

The checks run on environments given as dicts; against the real cluster, each piece
is removed in a subprocess (libhdfs reads the environment once, when it starts its
JVM, so this process cannot unlearn it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlartifacts.errors import ConfigError
from mlartifacts_hdfs._client import check_client_setup


def _complete(hdfs: Any) -> dict[str, str]:
    return dict(hdfs.client_env)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"JAVA_HOME": None}, "Java: JAVA_HOME is not set"),
        ({"JAVA_HOME": "/nowhere"}, "Java: JAVA_HOME=/nowhere holds no libjvm"),
        ({"ARROW_LIBHDFS_DIR": "/nowhere"}, "libhdfs: ARROW_LIBHDFS_DIR=/nowhere holds no libhdfs"),
        ({"ARROW_LIBHDFS_DIR": None, "HADOOP_HOME": None, "LD_LIBRARY_PATH": None}, "set ARROW_LIBHDFS_DIR"),
        ({"CLASSPATH": None}, "CLASSPATH is not set"),
        ({"CLASSPATH": "/opt/hadoop/share/hadoop/common/*"}, "wildcards"),
        ({"CLASSPATH": "/etc/hadoop"}, "lists no Hadoop jar"),
        ({"CLASSPATH": "/gone/hadoop-common-3.3.6.jar"}, "does not exist"),
    ],
)
def test_each_missing_piece_is_named(hdfs_cluster: Any, change: dict[str, str | None], says: str) -> None:
    env = _complete(hdfs_cluster)
    check_client_setup(env)  # complete: no complaint
    for name, value in change.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    with pytest.raises(ConfigError, match=says) as raised:
        check_client_setup(env)
    message = str(raised.value)
    if "CLASSPATH" in says or "wildcards" in says or "Hadoop jar" in says or "exist" in says:
        assert "CLASSPATH=$(hadoop classpath --glob)" in message


def test_every_missing_piece_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        check_client_setup({"ARROW_LIBHDFS_DIR": "/nowhere"})
    assert [part.split(":")[0] for part in str(raised.value).split("\n  - ")] == [
        "the HDFS client is not set up",
        "Java",
        "libhdfs",
        "Hadoop CLASSPATH",
    ]
    assert "Java: JAVA_HOME is not set" in str(raised.value)


PROBE = """
import json, sys
from mlartifacts import ArtifactStore
from mlartifacts.errors import ArtifactError
try:
    ArtifactStore(sys.argv[1]).list_artifacts()
    print(json.dumps({"ok": True}))
except ArtifactError as exc:
    print(json.dumps({"ok": False, "type": type(exc).__name__, "message": str(exc)}))
"""


def _probe(uri: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, uri], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _env_without(hdfs: Any, **changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLARTIFACTS_"))}
    env.update(hdfs.client_env)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_complete_setup_connects(hdfs: Any) -> None:
    assert _probe(hdfs.fresh_uri(), _env_without(hdfs)) == {"ok": True}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"JAVA_HOME": None}, "JAVA_HOME is not set"),
        ({"ARROW_LIBHDFS_DIR": "/nowhere"}, "ARROW_LIBHDFS_DIR=/nowhere holds no libhdfs"),
        ({"CLASSPATH": None}, "CLASSPATH is not set"),
        ({"CLASSPATH": "WILDCARD"}, "wildcards"),
    ],
)
def test_real_client_without_a_piece(hdfs: Any, changes: dict[str, str | None], says: str) -> None:
    if changes.get("CLASSPATH") == "WILDCARD":  # what users write first, and libhdfs cannot use
        jars = Path(hdfs.client_env["CLASSPATH"].split(os.pathsep)[1]).parent
        changes = {"CLASSPATH": f"{hdfs.conf}{os.pathsep}{jars}/*"}
    result = _probe(hdfs.fresh_uri(), _env_without(hdfs, **changes))
    assert result["ok"] is False and result["type"] == "ConfigError"
    assert says in result["message"]
    assert "HDFS connection failed" not in result["message"]


def test_default_namenode_needs_the_configuration_on_the_classpath(hdfs: Any) -> None:
    # Without core-site.xml, Hadoop's default filesystem is the local disk: refused, not used.
    jars_only = os.pathsep.join(hdfs.client_env["CLASSPATH"].split(os.pathsep)[1:])
    result = _probe("hdfs:///tests/x", _env_without(hdfs, CLASSPATH=jars_only))
    assert result["ok"] is False and result["type"] == "ConfigError"
    assert "fs.defaultFS" in result["message"] and "hdfs://host:port/path" in result["message"]
