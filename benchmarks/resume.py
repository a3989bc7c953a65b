"""Finishing an interrupted multipart upload: resumed (only the missing parts) vs restarted.

    uv run python benchmarks/resume.py [--size-mib 2048] [--repeat 2] [--dir DIR] [--backends s3,memory]

For each backend: a ``--size-mib`` file is uploaded and the upload is interrupted
once half its bytes were sent, then the upload is finished two ways, timed:

- resumed: the same ``log_artifact`` run again, resuming on (the default): it checks
  the journal against the storage's list of parts and sends the other half;
- restarted: the same, with ``MLARTIFACTS_RESUME=false``: a new upload from byte 0
  (what every run did before, and what MLflow and boto3 do).

An uninterrupted upload is timed as the reference. ``s3``: a SeaweedFS started here
(``weed mini``, every port on 127.0.0.1, stopped by PID at the end); the interrupted
upload is a child process that SIGKILLs itself at 50 %, each finishing run is its own
child process (interpreter start-up included). ``memory``: the in-memory backend,
which lives in one process: the interruption is an exception from the progress
listener at 50 %, the finishing runs are timed in this process. The storage server
competes with the client for this machine's cores, so compare the rows with one
another, not with a real S3 endpoint.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import child_env, measure
from s3_seaweedfs import BUCKET, running_seaweedfs, s3_child_env

from mlartifacts import ArtifactStore, Settings

MiB = 1024 * 1024

WORKER = r"""
import os, signal, sys
from mlartifacts import ArtifactStore
mode, src, dst = sys.argv[1:4]

class KillAtHalf:
    def begin(self, total_bytes, total_files):
        self.half, self.moved = total_bytes // 2, 0
    def update(self, nbytes):
        self.moved += nbytes
        if self.moved >= self.half:
            os.kill(os.getpid(), signal.SIGKILL)  # as a lost laptop or an OOM kill would
    def file_done(self, path): pass
    def end(self): pass

with ArtifactStore(dst) as store:
    store.upload_file(src, "big.bin", progress=KillAtHalf() if mode == "interrupt" else None)
"""


class _StopAtHalf(Exception):
    pass


class _HalfProgress:
    def begin(self, total_bytes: int | None, total_files: int) -> None:
        self.half, self.moved = (total_bytes or 0) // 2, 0

    def update(self, nbytes: int) -> None:
        self.moved += nbytes
        if nbytes > 0 and self.moved >= self.half:
            raise _StopAtHalf

    def file_done(self, path: str) -> None: ...
    def end(self) -> None: ...


def bench_s3(base: Path, big: Path, repeat: int) -> list[tuple[str, list[float]]]:
    with running_seaweedfs(base / "seaweedfs") as (endpoint, admin):
        state = base / "state"
        plain = {k: v for k, v in child_env().items() if not k.startswith("MLFLOW_")}
        env = {
            **s3_child_env(plain, endpoint, base),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLARTIFACTS_STATE_DIR": str(state),
        }

        def child(mode: str, dst: str, **extra: str) -> tuple[float, float]:
            cmd = [sys.executable, "-c", WORKER, mode, str(big), dst]
            if mode == "interrupt":
                proc = subprocess.run(cmd, env={**env, **extra}, check=False)
                if proc.returncode != -9:
                    raise SystemExit(f"the interrupted upload ended with {proc.returncode}, not SIGKILL")
                return 0.0, 0.0
            return measure(cmd, {**env, **extra})

        def clean(prefix: str) -> None:
            for page in admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    admin.delete_object(Bucket=BUCKET, Key=obj["Key"])
            uploads = admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", ())
            for upload in uploads:
                admin.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
            shutil.rmtree(state, ignore_errors=True)

        rows: dict[str, list[float]] = {"uninterrupted": [], "resumed": [], "restarted": []}
        for _ in range(repeat):
            for how in rows:
                prefix = f"r/{uuid.uuid4().hex}"
                dst = f"s3://{BUCKET}/{prefix}"
                if how != "uninterrupted":
                    child("interrupt", dst)
                extra = {"MLARTIFACTS_RESUME": "false"} if how == "restarted" else {}
                seconds, _ = child("finish", dst, **extra)
                size = admin.head_object(Bucket=BUCKET, Key=f"{prefix}/big.bin")["ContentLength"]
                if size != big.stat().st_size:
                    raise SystemExit(f"{how}: stored {size} bytes, expected {big.stat().st_size}")
                rows[how].append(seconds)
                clean(prefix)
        return list(rows.items())


def bench_memory(base: Path, big: Path, repeat: int) -> list[tuple[str, list[float]]]:
    rows: dict[str, list[float]] = {"uninterrupted": [], "resumed": [], "restarted": []}
    state = base / "memory-state"
    for _ in range(repeat):
        for how in rows:
            settings = Settings(state_dir=str(state), resume=how != "restarted")
            uri = f"memory://bench/{uuid.uuid4().hex}"
            with ArtifactStore(uri, settings=Settings(state_dir=str(state))) as store:
                if how != "uninterrupted":
                    try:
                        store.upload_file(str(big), "big.bin", progress=_HalfProgress())
                    except _StopAtHalf:
                        pass
            with ArtifactStore(uri, settings=settings) as store:
                started = time.perf_counter()
                store.upload_file(str(big), "big.bin")
                rows[how].append(time.perf_counter() - started)
                if store.stat("big.bin").file_size != big.stat().st_size:
                    raise SystemExit(f"memory {how}: wrong size stored")
                store.delete("big.bin")
                for pending in store.backend.list_multipart_uploads(""):
                    store.backend.abort_multipart(pending.path, pending.upload_id)
            shutil.rmtree(state, ignore_errors=True)
    return list(rows.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backends", default="s3,memory")
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"  # no metadata probe from this process either

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-resume-bench-", dir=args.dir))
    try:
        big = base / "big.bin"
        block = os.urandom(8 * MiB)
        with open(big, "wb") as f:
            for _ in range(args.size_mib // 8):
                f.write(block)
        print(f"finishing a {args.size_mib} MiB upload interrupted at 50 % (median of {args.repeat}, s)")
        print(f"{'backend':<8} {'case':<14} {'seconds':>9} {'(min-max)':>15}  vs restarted")
        for backend in args.backends.split(","):
            bench = bench_s3 if backend == "s3" else bench_memory
            rows = bench(base, big, args.repeat)
            restarted = statistics.median(dict(rows)["restarted"])
            for how, times in rows:
                median = statistics.median(times)
                spread = f"({min(times):.2f}-{max(times):.2f})"
                ratio = f"{restarted / median:.2f}x"
                print(f"{backend:<8} {how:<14} {median:>9.3f} {spread:>15}  {ratio}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
