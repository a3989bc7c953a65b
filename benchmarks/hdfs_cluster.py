"""HDFS backend vs raw pyarrow ``copy_files`` vs MLflow's HdfsArtifactRepository, on a local cluster.

    uv run python benchmarks/hdfs_cluster.py [--size-mib 256] [--files 1000] [--repeat 1] [--dir DIR]

Starts its own Hadoop 2.7.3 NameNode and DataNode (the test cluster of
plugins/hdfs/tests/hdfs_cluster.py, installed by scripts/install into tools/hdfs),
every port on 127.0.0.1, with HDFS's usual 128 MiB blocks, and stops both by PID at
the end. Cases: a large file and a tree of 10 KiB files, each uploaded and downloaded by

- mlartifacts: ``ArtifactStore(hdfs://...)`` with its default settings;
- pyarrow: ``pyarrow.fs.copy_files`` between ``LocalFileSystem`` and ``HadoopFileSystem``
  (C++ streams, a thread per file for trees: what a script using pyarrow directly does);
- mlflow: ``HdfsArtifactRepository`` from MLflow's own environment (tools/venvs/mlflow,
  which brings its pyarrow; ``--no-mlflow`` leaves it out).

Every measurement runs in its own child process (interpreter start-up, imports and the
JVM's start included, as a user's script pays them), after a sync, tools interleaved
across repeats; the median is shown with the child's peak RSS (VmHWM, the JVM's heap
included). The cluster runs on the same machine and competes for its cores: the
figures compare the clients with one another here, not with a real cluster.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from _common import child_env, compare, make_inputs, measure, run_dir, transfer_cases

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "hdfs" / "tests"))

from hdfs_cluster import java_home, start_cluster  # noqa: E402

MLFLOW_PYTHON = REPO / "tools" / "venvs" / "mlflow" / "bin" / "python"

WORKER = r"""
import os, sys
tool, op, src, dst = sys.argv[1:5]
namenode = os.environ["BENCH_NAMENODE"]  # hdfs://127.0.0.1:port
if tool == "mlartifacts":
    from mlartifacts import ArtifactStore
    if op == "upload-file":
        with ArtifactStore(dst) as store:
            store.log_artifact(src)
    elif op == "upload-tree":
        with ArtifactStore(dst) as store:
            store.log_artifacts(src)
    else:  # download-file / download-tree: src is hdfs://.../stored/name
        parent, name = src.rsplit("/", 1)
        with ArtifactStore(parent) as store:
            store.download_artifacts(name, dst)
elif tool == "pyarrow":
    from pyarrow import fs
    host, port = namenode.rsplit(":", 1)
    hdfs = fs.HadoopFileSystem(host.split("//")[1], int(port), replication=0)
    local = fs.LocalFileSystem()
    if op.startswith("upload"):
        target = dst[len(namenode):] + "/" + os.path.basename(src)
        fs.copy_files(src, target, source_filesystem=local, destination_filesystem=hdfs)
    else:
        source = src[len(namenode):]
        fs.copy_files(source, os.path.join(dst, os.path.basename(source)),
                      source_filesystem=hdfs, destination_filesystem=local)
elif tool == "mlflow":
    from mlflow.store.artifact.hdfs_artifact_repo import HdfsArtifactRepository
    if op == "upload-file":
        HdfsArtifactRepository(dst).log_artifact(src)
    elif op == "upload-tree":
        HdfsArtifactRepository(dst).log_artifacts(src)
    else:
        parent, name = src.rsplit("/", 1)
        HdfsArtifactRepository(parent).download_artifacts(name, dst)
else:
    raise SystemExit(f"unknown tool {tool}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    args = parser.parse_args()

    jdk = java_home()
    if jdk is None:
        raise SystemExit("the HDFS cluster is not installed in tools/hdfs: run scripts/install")
    tools = ["mlartifacts", "pyarrow"] + ([] if args.no_mlflow else ["mlflow"])
    pythons = {"mlartifacts": sys.executable, "pyarrow": sys.executable}
    if not args.no_mlflow:
        if not MLFLOW_PYTHON.exists():
            raise SystemExit("tools/venvs/mlflow is missing: run scripts/install")
        pythons["mlflow"] = str(MLFLOW_PYTHON)

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-hdfs-bench-", dir=args.dir))
    try:
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib, args.files))
        with start_cluster(base / "cluster", jdk, block_size=128 * 1024 * 1024) as cluster:
            namenode = f"hdfs://127.0.0.1:{cluster.port}"
            env = {
                **{k: v for k, v in child_env().items() if not k.startswith(("MLFLOW_", "MLARTIFACTS_"))},
                **cluster.client_env,
                "BENCH_NAMENODE": namenode,
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "true",
                # No SDK here probes a metadata address; keep it so if one ever tries.
                "AWS_EC2_METADATA_DISABLED": "true",
                "NO_GCE_CHECK": "True",
                "GCE_METADATA_HOST": "127.0.0.1:1",
                "GCE_METADATA_IP": "127.0.0.1:1",
            }
            # The files every tool downloads, stored once (by pyarrow).
            for source in (big, tree):
                cmd = [sys.executable, "-c", WORKER, "pyarrow", "upload-x", str(source), f"{namenode}/stored"]
                measure(cmd, env)
            big_uri, tree_uri = f"{namenode}/stored/{big.name}", f"{namenode}/stored/{tree.name}"

            def run_one(tool: str, op: str, source: str) -> tuple[float, float]:
                target = (
                    str(run_dir(base, "downloads"))
                    if op.startswith("download")
                    else f"{namenode}/up/{uuid.uuid4().hex}"
                )
                result = measure([pythons[tool], "-c", WORKER, tool, op, source, target], env)
                if op == "download-file":
                    shutil.rmtree(target)  # one big file: free the space at once
                return result

            cases = transfer_cases(args.size_mib, args.files, str(big), big_uri, str(tree), tree_uri)
            compare(cases, tools, args.repeat, run_one, reference="pyarrow")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
