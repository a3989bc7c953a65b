"""The client side of HDFS: checking its setup, and one connected filesystem per namenode and login.

pyarrow reaches HDFS through libhdfs, which starts a JVM inside this process on the
first connection. That needs three things from the environment, and when one is
missing pyarrow only says "HDFS connection failed" (or the JVM aborts the process),
so :func:`check_client_setup` looks for each first and names what is missing:

- Java: ``JAVA_HOME``, the installation whose ``lib/server`` holds ``libjvm.so``;
- libhdfs: ``libhdfs.so`` in ``ARROW_LIBHDFS_DIR``, ``$HADOOP_HOME/lib/native`` or the
  system library path;
- the Hadoop jars: ``CLASSPATH`` listing every jar by name (the JVM started this way
  does not expand ``*``), as ``hadoop classpath --glob`` prints it, plus the
  configuration folder (``core-site.xml``, ``hdfs-site.xml``).
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from mlartifacts.errors import ConfigError

from ._config import HdfsConfig

if TYPE_CHECKING:
    from pyarrow.fs import HadoopFileSystem

__all__ = ["Namenode", "check_client_setup", "connect", "default_fs"]

FIX_CLASSPATH = "export CLASSPATH=$(hadoop classpath --glob)"
_LIBHDFS = "libhdfs.dylib" if sys.platform == "darwin" else "libhdfs.so"
_LIBJVM = "libjvm.dylib" if sys.platform == "darwin" else "libjvm.so"


@dataclass(frozen=True)
class Namenode:
    """Where to connect, in pyarrow's terms.

    ``host`` is ``"default"`` (``fs.defaultFS`` from ``core-site.xml``), or a URI
    authority with its scheme (``"hdfs://nn1"``, ``"viewfs://cluster"``); ``port`` 0
    means the one the URI or the configuration implies.
    """

    host: str
    port: int = 0


def _libjvm(java_home: str) -> str | None:
    for sub in ("lib/server", "jre/lib/server", "lib/*/server", "jre/lib/*/server", "lib"):
        found = glob.glob(os.path.join(java_home, sub, _LIBJVM))
        if found:
            return found[0]
    return None


def _java_problem(env: Mapping[str, str]) -> str | None:
    java_home = env.get("JAVA_HOME", "")
    if not java_home:
        installed = sorted(glob.glob("/usr/lib/jvm/*/lib/server/" + _LIBJVM))
        hint = (
            f" (found here: {os.path.dirname(os.path.dirname(os.path.dirname(installed[0])))})"
            if installed
            else ""
        )
        return (
            "Java: JAVA_HOME is not set; set it to the Java installation whose lib/server holds "
            f"{_LIBJVM}{hint}"
        )
    if _libjvm(java_home) is None:
        return f"Java: JAVA_HOME={java_home} holds no {_LIBJVM} (in lib/server); point it at a JDK or JRE"
    return None


def _libhdfs_problem(env: Mapping[str, str]) -> str | None:
    configured = env.get("ARROW_LIBHDFS_DIR", "")
    if configured:
        if os.path.isfile(os.path.join(configured, _LIBHDFS)):
            return None
        return f"libhdfs: ARROW_LIBHDFS_DIR={configured} holds no {_LIBHDFS}"
    # pyarrow's own search when ARROW_LIBHDFS_DIR is unset.
    hadoop_home = env.get("HADOOP_HOME", "")
    candidates = [os.path.join(hadoop_home, "lib", "native")] if hadoop_home else []
    candidates += [d for d in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d]
    if any(os.path.isfile(os.path.join(d, _LIBHDFS)) for d in candidates):
        return None
    if ctypes.util.find_library("hdfs"):
        return None
    return (
        f"libhdfs: {_LIBHDFS} was not found (ARROW_LIBHDFS_DIR is not set, and it is neither in "
        "$HADOOP_HOME/lib/native nor on the library path); set ARROW_LIBHDFS_DIR to the folder "
        f"holding {_LIBHDFS} ($HADOOP_HOME/lib/native in a Hadoop distribution)"
    )


def _classpath_problem(env: Mapping[str, str]) -> str | None:
    classpath = env.get("CLASSPATH", "")
    entries = [e for e in classpath.split(os.pathsep) if e]
    if not entries:
        return f"Hadoop CLASSPATH: CLASSPATH is not set; the JVM needs every Hadoop jar: {FIX_CLASSPATH}"
    hadoop_jars = [e for e in entries if os.path.basename(e).startswith("hadoop-") and e.endswith(".jar")]
    if any(os.path.isfile(jar) for jar in hadoop_jars):
        return None
    wildcards = [e for e in entries if e.endswith("*")]
    if wildcards:
        return (
            f"Hadoop CLASSPATH: CLASSPATH has wildcards ({wildcards[0]}), which the JVM libhdfs starts "
            f"does not expand, and no Hadoop jar by name: {FIX_CLASSPATH}"
        )
    if hadoop_jars:
        return f"Hadoop CLASSPATH: CLASSPATH names {hadoop_jars[0]}, which does not exist: {FIX_CLASSPATH}"
    return (
        "Hadoop CLASSPATH: CLASSPATH lists no Hadoop jar (hadoop-common-*.jar, hadoop-hdfs-*.jar...): "
        f"{FIX_CLASSPATH}"
    )


def check_client_setup(environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError naming every missing piece of the HDFS client setup, and how to fix it."""
    env = os.environ if environ is None else environ
    problems = [p for p in (_java_problem(env), _libhdfs_problem(env), _classpath_problem(env)) if p]
    if problems:
        raise ConfigError("the HDFS client is not set up:" + "".join(f"\n  - {p}" for p in problems))


def default_fs(environ: Mapping[str, str] | None = None) -> str | None:
    """``fs.defaultFS`` from the first ``core-site.xml`` in a CLASSPATH folder (as Hadoop reads it)."""
    env = os.environ if environ is None else environ
    for entry in env.get("CLASSPATH", "").split(os.pathsep):
        site = os.path.join(entry, "core-site.xml")
        if entry and os.path.isfile(site):
            try:
                tree = ET.parse(site)
            except (OSError, ET.ParseError) as exc:
                raise ConfigError(f"cannot read {site} (on the CLASSPATH): {exc}") from None
            for prop in tree.getroot().iter("property"):
                if (prop.findtext("name") or "").strip() in ("fs.defaultFS", "fs.default.name"):
                    return (prop.findtext("value") or "").strip() or None
            return None
    return None


def connect(namenode: Namenode, config: HdfsConfig) -> HadoopFileSystem:
    """Connect to the namenode: on the first connection of the process, this starts the JVM (seconds)."""
    check_client_setup()
    from pyarrow.fs import HadoopFileSystem

    return HadoopFileSystem(
        namenode.host,
        namenode.port,
        user=config.user,
        kerb_ticket=config.kerb_ticket,
        extra_conf=config.extra or None,
        # 0: the cluster's own dfs.replication, not pyarrow's 3.
        replication=0,
    )
