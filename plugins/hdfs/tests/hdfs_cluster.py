"""A real HDFS: a Hadoop 2.7.3 NameNode and DataNode on 127.0.0.1, for the tests and the benchmark.

The jars, the JDK and libhdfs.so come from ``scripts/install`` (``plugins/hdfs/ci/install``,
cached in ``tools/hdfs``); :func:`start_cluster` runs the two daemons. Every address
is a free port on 127.0.0.1, WebHDFS is off (Jersey 1 is not among the jars), the
block size is 1 MiB by default so that modest files span several blocks, and each
daemon keeps its temporary files in the cluster's directory. A client process needs
the setup a user would have (``HdfsCluster.client_env``: ``JAVA_HOME``,
``ARROW_LIBHDFS_DIR``, ``CLASSPATH`` with every jar, ``LIBHDFS_OPTS``): libhdfs starts
its JVM inside the process at the first connection, reading them then.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from xml.sax.saxutils import escape

from mlartifacts.testing.servers import ServerProcess, free_port, tcp_open, wait_for

REPO = Path(__file__).resolve().parents[3]
TOOLS = REPO / "tools" / "hdfs"
BLOCK_SIZE = 1024 * 1024
READY = "Successfully sent block report"
NAMENODE = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE = "org.apache.hadoop.hdfs.server.datanode.DataNode"
FSSHELL = "org.apache.hadoop.fs.FsShell"
VIEWFS = "testcluster"

# The daemons log at INFO to their own log files; the client in the tests' process
# only says something when it matters.
DAEMON_LOG4J = """\
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
"""
CLIENT_LOG4J = DAEMON_LOG4J.replace("rootLogger=INFO", "rootLogger=ERROR")


def _site(properties: dict[str, str]) -> str:
    rows = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n"
        for k, v in properties.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{rows}</configuration>\n'


@dataclass
class HdfsCluster:
    """One running NameNode and DataNode, and what a client needs to reach them."""

    port: int  # the NameNode's RPC port
    base: Path
    conf: Path
    java: str
    daemon_classpath: str
    client_env: dict[str, str]
    namenode: ServerProcess
    datanode: ServerProcess
    datanode_starts: int = field(default=1)
    block_size: int = BLOCK_SIZE

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, path: str = "") -> str:
        """An hdfs:// URI on this cluster (path without a leading slash)."""
        return f"hdfs://{self.authority}/{path}"

    def fresh_uri(self) -> str:
        """A new, empty root below /tests."""
        return self.uri(f"tests/{uuid.uuid4().hex}")

    def _daemon(self, main: str, name: str) -> ServerProcess:
        return ServerProcess(
            [self.java, "-Xmx256m", "-XX:-UsePerfData", f"-Djava.io.tmpdir={self.base / 'tmp'}",
             f"-Dlog4j.configuration=file:{self.base / 'daemon-log4j.properties'}",
             "-cp", self.daemon_classpath, main],
            self.base / f"{name}.log",
            stop_timeout=15,
            cwd=self.base,
        )  # fmt: skip

    def shell(self, *args: str) -> str:
        """Run ``hdfs dfs <args>`` (Hadoop's FsShell, as the superuser) and return its output."""
        done = subprocess.run(
            [self.java, "-Xmx128m", "-XX:-UsePerfData", f"-Djava.io.tmpdir={self.base / 'tmp'}",
             "-cp", self.daemon_classpath, FSSHELL, *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"hdfs dfs {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def block_files(self) -> set[Path]:
        """The block files the DataNode holds now (one per HDFS block)."""
        return {p for p in (self.base / "data").rglob("blk_*") if not p.name.endswith(".meta")}

    def kill_datanode(self) -> None:
        """Kill the DataNode at once (SIGKILL), as a crash would."""
        assert self.datanode.popen is not None
        self.datanode.popen.send_signal(signal.SIGKILL)
        self.datanode.popen.wait()
        self.datanode.stop()  # closes its log

    def start_datanode(self) -> None:
        """Start a DataNode on the same storage and ports; wait for its block report."""
        if self.datanode.popen is not None and self.datanode.popen.poll() is None:
            # A second one would fail on the ports, and the first would outlive the session.
            raise RuntimeError("the DataNode is still running: kill it first")
        self.datanode_starts += 1
        self.datanode = self._daemon(DATANODE, f"datanode-{self.datanode_starts}").start()
        _wait_block_report(self.namenode, self.datanode)


def _wait_block_report(namenode: ServerProcess, datanode: ServerProcess, timeout: float = 180.0) -> None:
    """Wait until the DataNode has reported its blocks; fail early, with both logs, if a daemon dies."""
    deadline = time.monotonic() + timeout
    while READY not in datanode.log.read_text(errors="replace"):
        dead = [
            (name, p)
            for name, p in (("NameNode", namenode), ("DataNode", datanode))
            if p.popen is not None and p.popen.poll() is not None
        ]
        if dead or time.monotonic() > deadline:
            what = f"the {dead[0][0]} exited" if dead else f"no block report after {timeout:g} s"
            raise RuntimeError(
                f"HDFS did not start: {what}\nNameNode log:{namenode.log_tail()}"
                f"\nDataNode log:{datanode.log_tail()}"
            )
        time.sleep(0.1)


def _configure(base: Path, block_size: int) -> tuple[Path, int]:
    conf = base / "conf"
    conf.mkdir(parents=True)
    port = free_port()
    addresses = {
        name: f"127.0.0.1:{free_port()}"
        for name in (
            "dfs.namenode.http-address",
            "dfs.namenode.secondary.http-address",
            "dfs.datanode.address",
            "dfs.datanode.http.address",
            "dfs.datanode.ipc.address",
        )
    }
    core = {
        "fs.defaultFS": f"hdfs://127.0.0.1:{port}",
        "hadoop.tmp.dir": str(base / "hadoop-tmp"),
        "hadoop.security.authentication": "simple",
        # A ViewFS mount table, for viewfs:// URIs: /data in it is /viewfs-data on this cluster.
        f"fs.viewfs.mounttable.{VIEWFS}.link./data": f"hdfs://127.0.0.1:{port}/viewfs-data",
    }
    hdfs = {
        "dfs.namenode.name.dir": str(base / "name"),
        "dfs.datanode.data.dir": str(base / "data"),
        "dfs.namenode.rpc-address": f"127.0.0.1:{port}",
        **addresses,
        "dfs.datanode.hostname": "127.0.0.1",
        "dfs.namenode.datanode.registration.ip-hostname-check": "false",
        "dfs.replication": "1",
        # Permissions are checked (as on real clusters), so that who a client acts as
        # (MLFLOW_KERBEROS_USER) shows. The tests' own user started the NameNode: the superuser.
        "dfs.permissions.enabled": "true",
        "dfs.namenode.safemode.extension": "0",
        # With WebHDFS on, the NameNode dies: Jersey 1 is not among the jars.
        "dfs.webhdfs.enabled": "false",
        # Small blocks, so that a few MiB cross several block boundaries. 1 MiB is
        # also the default lowest size the NameNode accepts: lowered to leave room.
        "dfs.blocksize": str(block_size),
        "dfs.namenode.fs-limits.min-block-size": str(64 * 1024),
        # One DataNode: a client must not look for another to replace a failed one in its
        # write pipeline (there is none). Here only, never a default of the plugin's.
        "dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER",
        # A DataNode restarted by a test reports in quickly.
        "dfs.heartbeat.interval": "1",
    }
    (conf / "core-site.xml").write_text(_site(core))
    (conf / "hdfs-site.xml").write_text(_site(hdfs))
    (conf / "log4j.properties").write_text(CLIENT_LOG4J)
    (base / "daemon-log4j.properties").write_text(DAEMON_LOG4J)
    (base / "tmp").mkdir()
    return conf, port


def java_home(tools: Path = TOOLS) -> str | None:
    """The JDK libhdfs.so was built against, if the install step ran and it is still there."""
    recorded = tools / "java_home"
    if not recorded.is_file() or not (tools / "lib" / "libhdfs.so").is_file():
        return None
    found = recorded.read_text().strip()
    return found if Path(found, "bin", "java").is_file() else None


@contextlib.contextmanager
def start_cluster(
    base: Path, jdk: str, tools: Path = TOOLS, block_size: int = BLOCK_SIZE
) -> Iterator[HdfsCluster]:
    """Format and start a NameNode and a DataNode in ``base``; stop both (by PID) on exit."""
    jars = sorted(str(p) for p in (tools / "jars").glob("*.jar"))
    conf, port = _configure(base, block_size)
    java = str(Path(jdk, "bin", "java"))
    web = base / "web"  # the daemons look for their (here empty) web apps on the classpath
    for app in ("hdfs", "datanode", "secondary"):
        (web / "webapps" / app).mkdir(parents=True)
    daemon_classpath = os.pathsep.join([str(conf), str(web), str(tools / "jars" / "*")])
    client_env = {
        "JAVA_HOME": jdk,
        "ARROW_LIBHDFS_DIR": str(tools / "lib"),
        # libhdfs's JVM does not expand a jars/* wildcard: every jar by name.
        "CLASSPATH": os.pathsep.join([str(conf), *jars]),
        "LIBHDFS_OPTS": f"-Xmx256m -XX:-UsePerfData -Djava.io.tmpdir={base / 'tmp'}",
    }
    formatted = subprocess.run(
        [java, "-Xmx256m", "-XX:-UsePerfData", f"-Djava.io.tmpdir={base / 'tmp'}",
         f"-Dlog4j.configuration=file:{base / 'daemon-log4j.properties'}",
         "-cp", daemon_classpath, NAMENODE, "-format", "-nonInteractive", "-force"],
        capture_output=True, text=True, timeout=120, cwd=base, check=False,
    )  # fmt: skip
    if formatted.returncode != 0:
        raise RuntimeError(f"hdfs namenode -format failed:\n{formatted.stderr[-3000:]}")
    cluster = HdfsCluster(
        port=port,
        base=base,
        conf=conf,
        java=java,
        daemon_classpath=daemon_classpath,
        client_env=client_env,
        block_size=block_size,
        namenode=None,  # type: ignore[arg-type]
        datanode=None,  # type: ignore[arg-type]
    )
    cluster.namenode = cluster._daemon(NAMENODE, "namenode").start()
    try:
        # The DataNode binds ports of its own choosing (port 0) as it starts: started before the
        # NameNode holds its RPC port, it could take that very port (seen: "Address already in use").
        wait_for(tcp_open(port), timeout=120, proc=cluster.namenode, what="the HDFS NameNode")
        cluster.datanode = cluster._daemon(DATANODE, "datanode-1").start()
        try:
            _wait_block_report(cluster.namenode, cluster.datanode)
            yield cluster
        finally:
            cluster.datanode.stop()
    finally:
        cluster.namenode.stop()
