"""The cost of digests (issue 15): the same transfers with MLARTIFACTS_DIGESTS on and off, same run.

    uv run python benchmarks/integrity.py [--size-mib 1024] [--files 1000] [--repeat 3] [--dir DIR]
                                          [--backends local,s3]

Cases: a large file and a tree of 10 KiB files, each uploaded and downloaded, on
local disk (the nfs plugin, a plain path) and on S3 (a SeaweedFS it starts on
127.0.0.1 and stops by PID, as benchmarks/s3_seaweedfs.py does). "digests" is the
default (the engine hashes SHA-256 while it uploads and records it; downloads are
checked against it before the rename); "no-digests" is MLARTIFACTS_DIGESTS=false
(size and the backend's native checksum only). The objects downloaded were uploaded
by mlartifacts with digests, so both modes read the same objects.

Every measurement runs in its own child process, modes interleaved across repeats;
the median is shown with the child's peak RSS. The S3 server shares the machine's
cores with the client (and with anything else running).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from _common import child_env, compare, make_inputs, measure, run_dir, transfer_cases
from s3_seaweedfs import BUCKET, running_seaweedfs, s3_child_env

WORKER = r"""
import sys
from mlartifacts import ArtifactStore
op, src, dst = sys.argv[1:4]
if op == "upload-file":
    with ArtifactStore(dst) as store:
        store.log_artifact(src)
elif op == "upload-tree":
    with ArtifactStore(dst) as store:
        store.log_artifacts(src)
else:  # download-file / download-tree: src is <root>/<name>
    parent, name = src.rsplit("/", 1)
    with ArtifactStore(parent) as store:
        store.download_artifacts(name, dst)
"""

MODES = {"digests": "true", "no-digests": "false"}


def store_inputs(python: str, env: dict[str, str], big: Path, tree: Path, root: str) -> tuple[str, str]:
    """Upload the inputs once (with digests) under ``root``; the URIs the downloads read."""
    for op, src in (("upload-file", big), ("upload-tree", tree)):
        subprocess.run([python, "-c", WORKER, op, str(src), f"{root}/{op}"], env=env, check=True)
    return f"{root}/upload-file/{big.name}", f"{root}/upload-tree"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    parser.add_argument("--backends", default="local,s3")
    args = parser.parse_args()
    backends = args.backends.split(",")

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-integrity-bench-", dir=args.dir))
    stack = contextlib.ExitStack()
    try:
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib, args.files))
        env = {
            **{k: v for k, v in child_env().items() if not k.startswith(("AWS_", "MLFLOW_", "MLARTIFACTS_"))},
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(base / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-aws-credentials"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        roots: dict[str, str] = {}
        if "local" in backends:
            roots["local"] = str(base / "store")
        if "s3" in backends:
            endpoint, _ = stack.enter_context(running_seaweedfs(base / "seaweedfs"))
            env = s3_child_env(env, endpoint, base)
            roots["s3"] = f"s3://{BUCKET}"

        for backend, root in roots.items():
            print(f"== {backend} ({args.size_mib} MiB file, {args.files} x 10 KiB files) ==", flush=True)
            big_uri, tree_uri = store_inputs(sys.executable, env, big, tree, f"{root}/stored")

            def run_one(mode: str, op: str, source: str, root: str = root) -> tuple[float, float]:
                if op.startswith("download"):
                    target = str(run_dir(base / "downloads", mode))
                else:
                    target = f"{root}/up/{uuid.uuid4().hex}"
                mode_env = {**env, "MLARTIFACTS_DIGESTS": MODES[mode]}
                result = measure([sys.executable, "-c", WORKER, op, source, target], mode_env)
                # One big file, downloaded or on the local store: it may go at once (see run_dir).
                if op.endswith("-file") and (op.startswith("download") or root == roots.get("local")):
                    shutil.rmtree(target, ignore_errors=True)
                return result

            cases = transfer_cases(args.size_mib, args.files, str(big), big_uri, str(tree), tree_uri)
            compare(cases, list(MODES), args.repeat, run_one, reference="no-digests")
            shutil.rmtree(base / "downloads", ignore_errors=True)
            if backend == "local":
                shutil.rmtree(root, ignore_errors=True)
    finally:
        stack.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
