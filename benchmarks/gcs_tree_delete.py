"""Tree deletes on fake-gcs-server: mlartifacts (concurrent requests) against a serial loop.

    uv run python benchmarks/gcs_tree_delete.py [--files 1000] [--repeat 3] [--latency-ms 0,20] [--dir DIR]

GCS deletes one object per request. Before this change the plugin sent them one
after the other, as a script looping over ``list_blobs`` does (``serial-sdk`` here,
the reference); it now sends them concurrently (``DELETE_CONCURRENCY``) while the
listing goes on. The JSON batch endpoint is not an option on the emulator (it
cannot serve it). Starts its own fake-gcs-server (filesystem backend, 127.0.0.1)
and stops it by PID; no SDK may reach a metadata server. Each repeat fills a fresh
prefix with ``--files`` 1-byte objects (in parallel, not timed) and times one tree
delete per tool, in this process, tools alternating. The emulator shares the
machine's cores with the client. ``--latency-ms``: each case also runs through a
relay (``mlartifacts.testing.servers.Relay``) that holds every request that long, as
a network round trip to GCS would (0: straight to the emulator).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gcs_fake import start_emulator

from mlartifacts.testing.servers import Relay, free_port

BUCKET = "bench-delete"


def fill(bucket: Any, prefix: str, files: int) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: bucket.blob(f"{prefix}/d{i % 10}/f{i:05d}").upload_from_string(b"x"), range(files)
            )
        )


def serial_delete(bucket: Any, prefix: str) -> None:
    for blob in bucket.client.list_blobs(bucket.name, prefix=f"{prefix}/"):
        bucket.delete_blob(blob.name)


def run_case(
    store_class: Any, admin: Any, bucket: Any, relayed: Any, args: Any, tag: str
) -> dict[str, list[float]]:
    """Time each tool's tree delete ``args.repeat`` times (filled straight, deleted through the relay)."""
    times: dict[str, list[float]] = {"mlartifacts": [], "serial-sdk": []}
    with store_class(f"gs://{BUCKET}") as store:
        store.exists("warm-up")  # the client and its connections, made once (not timed)
        for repeat in range(args.repeat):
            for tool in times:
                prefix = f"{tag}-{tool}-{repeat}"
                fill(bucket, prefix, args.files)
                started = time.perf_counter()
                if tool == "mlartifacts":
                    store.delete(prefix)
                else:
                    serial_delete(relayed, prefix)
                times[tool].append(time.perf_counter() - started)
                assert not list(admin.list_blobs(BUCKET, prefix=f"{prefix}/", max_results=1)), tool
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", default="0,20", help="comma-separated round trips to add")
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-gcs-delete-bench-", dir=args.dir))
    server = None
    closed = free_port()  # nothing listens there: metadata probes fail at once, on loopback
    try:
        server, url = start_emulator(base)
        for name in list(os.environ):
            if name.startswith(("GOOGLE_", "CLOUDSDK_", "MLFLOW_", "MLARTIFACTS_")):
                del os.environ[name]
        os.environ.update(
            STORAGE_EMULATOR_HOST=url,
            NO_GCE_CHECK="True",
            GCE_METADATA_HOST=f"127.0.0.1:{closed}",
            GCE_METADATA_IP=f"127.0.0.1:{closed}",
            CLOUDSDK_CONFIG=str(base / "no-gcloud"),
        )
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from mlartifacts import ArtifactStore

        admin = storage.Client(project="bench", credentials=AnonymousCredentials(),
                               client_options={"api_endpoint": url})  # fmt: skip
        bucket = admin.create_bucket(BUCKET)
        emulator_port = int(url.rsplit(":", 1)[1])
        for latency_ms in (float(x) for x in args.latency_ms.split(",")):
            with Relay(emulator_port, base / f"relay-{latency_ms}.log", latency=latency_ms / 1000) as relay:
                endpoint = f"http://127.0.0.1:{relay.port}"
                os.environ["STORAGE_EMULATOR_HOST"] = endpoint
                client = storage.Client(project="bench", credentials=AnonymousCredentials(),
                                        client_options={"api_endpoint": endpoint})  # fmt: skip
                times = run_case(
                    ArtifactStore, admin, bucket, client.bucket(BUCKET), args, f"rtt{latency_ms:g}"
                )
            reference = statistics.median(times["serial-sdk"])
            print(
                f"delete a tree of {args.files} objects, +{latency_ms:g} ms per request "
                f"(median of {args.repeat}, load {os.getloadavg()[0]:.1f})"
            )
            for tool, seconds in times.items():
                median = statistics.median(seconds)
                print(
                    f"  {tool:<12} {median:7.3f} s  ({min(seconds):.2f}-{max(seconds):.2f})  "
                    f"{args.files / median:8.0f} objects/s  {reference / median:5.2f}x serial-sdk",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
