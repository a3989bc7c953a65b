"""HDFS: ``hdfs://host:port/path``, ``hdfs:///path`` (the default namenode) and ``viewfs://cluster/path``.

Through pyarrow's ``HadoopFileSystem`` (libhdfs and a JVM in this process), as MLflow
does, with MLflow's settings (``MLFLOW_KERBEROS_TICKET_CACHE``, ``MLFLOW_KERBEROS_USER``,
``MLFLOW_PYARROW_EXTRA_CONF``; see :mod:`mlartifacts_hdfs._config`). The plugin is
HDFS's primitives (:mod:`._fs`); the core's path-store toolkit derives the hooks:
atomic writes through a temporary name renamed when complete, ``mkdir -p``, walks,
tree deletes, ranged reads. pyarrow is imported on first use of such a URI, never
when this module is imported.

Modules: ``_config`` (settings), ``_client`` (client setup checks, connecting),
``_root`` (URIs), ``_errors`` (the error table), ``_fs`` (the primitives).
"""

from __future__ import annotations

from mlartifacts import Capabilities, Settings
from mlartifacts.pathstore import PathStorePlugin, shared

from ._client import Namenode, check_client_setup
from ._config import HdfsConfig
from ._fs import HdfsFileSystem
from ._root import SCHEMES, check_default_fs, parse_uri

__all__ = ["HdfsConfig", "HdfsFileSystem", "Namenode", "plugin"]


def resolve(uri: str, settings: Settings) -> tuple[HdfsFileSystem, str]:
    """The filesystem (shared per namenode and settings) and root path of an HDFS URI."""
    namenode, base = parse_uri(uri)
    config = HdfsConfig.from_env(settings)
    # Checked now, before pyarrow is asked: its own message would only say "HDFS connection failed".
    check_client_setup()
    if namenode.host == "default":
        check_default_fs(uri)
    return shared(("hdfs", namenode, config), lambda: HdfsFileSystem(namenode, config)), base


#: Reads start at any offset (ranged_read). One stream per file (single_stream): a
#: DFSInputStream already reads a block ahead, and parallel ranges of the same blocks
#: from one process measured slower than one stream (benchmarks/hdfs_cluster.py).
CAPABILITIES = Capabilities(ranged_read=True, single_stream=True)

#: The plugin object the entry point names: every hook, derived from HdfsFileSystem.
plugin = PathStorePlugin(schemes=list(SCHEMES), resolve=resolve, capabilities=CAPABILITIES)
