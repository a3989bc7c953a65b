"""Azure backend vs raw azure-storage-blob vs MLflow's AzureBlobArtifactRepository, against Azurite.

    uv run python benchmarks/azure_azurite.py [--size-mib 512] [--files 1000] [--repeat 1] [--dir DIR]

Starts its own Azurite (``azurite-blob`` from tools/npm, installed by scripts/install;
127.0.0.1, telemetry off, data in the run's temporary directory) and stops it by PID
at the end. Cases: a large file and a tree of 10 KiB files, each uploaded and
downloaded by

- mlartifacts: ``ArtifactStore(wasbs://...)`` with its default settings;
- sdk: azure-storage-blob's ``upload_blob`` / ``download_blob(max_concurrency=10)``
  (10: the engine's default worker count), one call per file, in a loop, for trees
  (what a script using the SDK directly does);
- mlflow: ``AzureBlobArtifactRepository`` (mlflow-skinny with the Azure SDK, from
  tools/venvs/mlflow-azure, which scripts/install builds from plugins/azure/ci/tool-venvs;
  ``--no-mlflow`` leaves it out).

Every client authenticates with ``AZURE_STORAGE_CONNECTION_STRING`` (Azurite's
well-known development key). Every measurement runs in its own child process
(interpreter start-up and imports included), after a sync, tools interleaved across
repeats; the median is shown with the child's peak RSS (VmHWM). Source files are in the
page cache. Azurite (Node.js, single-threaded) runs on the same machine and competes
for its cores: the figures compare the clients with one another here, not with Azure.
No credential source leaves the machine: DefaultAzureCredential is never reached (a
connection string is set) and its managed identity points at a closed loopback port.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from _common import child_env, compare, make_inputs, measure, transfer_cases

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, tcp_open, wait_for

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "bench"
HOST = f"{ACCOUNT}.blob.core.windows.net"
CONCURRENCY = 10

WORKER = r"""
import os, sys
tool, op, src, dst = sys.argv[1:5]
container = os.environ["BENCH_CONTAINER"]
def name_of(uri):  # wasbs://container@host/name -> name
    return uri.split("/", 3)[3]
if tool == "mlartifacts":
    from mlartifacts import ArtifactStore
    if op == "upload-file":
        with ArtifactStore(dst) as store:
            store.log_artifact(src)
    elif op == "upload-tree":
        with ArtifactStore(dst) as store:
            store.log_artifacts(src)
    else:  # download-file / download-tree: src is wasbs://container@host/prefix/name
        parent, name = src.rsplit("/", 1)
        with ArtifactStore(parent) as store:
            store.download_artifacts(name, dst)
elif tool == "sdk":
    from azure.storage.blob import BlobServiceClient
    client = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    box = client.get_container_client(container)
    n = int(os.environ["BENCH_CONCURRENCY"])
    if op == "upload-file":
        with open(src, "rb") as f:
            box.upload_blob(name_of(dst) + "/" + os.path.basename(src), f, overwrite=True, max_concurrency=n)
    elif op == "upload-tree":
        prefix = name_of(dst)
        for directory, _, names in os.walk(src):
            for name in names:
                local = os.path.join(directory, name)
                with open(local, "rb") as f:
                    box.upload_blob(prefix + "/" + os.path.relpath(local, src), f, overwrite=True)
    elif op == "download-file":
        name = name_of(src)
        with open(os.path.join(dst, os.path.basename(name)), "wb") as f:
            box.download_blob(name, max_concurrency=n).readinto(f)
    else:
        prefix = name_of(src) + "/"
        for blob in box.list_blobs(name_starts_with=prefix):
            local = os.path.join(dst, blob.name[len(prefix):])
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "wb") as f:
                box.download_blob(blob.name, max_concurrency=n).readinto(f)
elif tool == "mlflow":
    from mlflow.store.artifact.azure_blob_artifact_repo import AzureBlobArtifactRepository
    if op == "upload-file":
        AzureBlobArtifactRepository(dst).log_artifact(src)
    elif op == "upload-tree":
        AzureBlobArtifactRepository(dst).log_artifacts(src)
    else:
        parent, name = src.rsplit("/", 1)
        AzureBlobArtifactRepository(parent).download_artifacts(name, dst)
else:
    raise SystemExit(f"unknown tool {tool}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    args = parser.parse_args()

    azurite = find_executable("azurite-blob", ROOT / "tools" / "npm" / "node_modules" / ".bin")
    if azurite is None:
        raise SystemExit(
            "azurite-blob not found: scripts/install installs it (plugins/azure/ci/npm-packages)"
        )
    tools = ["mlartifacts", "sdk"]
    pythons = {"mlartifacts": sys.executable, "sdk": sys.executable}
    if not args.no_mlflow:
        mlflow = ROOT / "tools" / "venvs" / "mlflow-azure" / "bin" / "python"
        if not mlflow.exists():
            raise SystemExit(f"{mlflow} not found: scripts/install builds it (or pass --no-mlflow)")
        tools.append("mlflow")
        pythons["mlflow"] = str(mlflow)

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-azure-bench-", dir=args.dir))
    server = None
    try:
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib, args.files))
        port = free_port()
        server = ServerProcess(
            [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(base / "azurite"),
             "--skipApiVersionCheck", "--silent", "--disableTelemetry"],
            base / "azurite.log",
        ).start()  # fmt: skip
        wait_for(tcp_open(port), 60, proc=server, what="Azurite")
        connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
        )
        clean = {
            k: v
            for k, v in child_env().items()
            if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "MLFLOW_", "MLARTIFACTS_"))
        }
        env = {
            **clean,
            "AZURE_STORAGE_CONNECTION_STRING": connection_string,
            # Never reached with a connection string; kept on loopback all the same.
            "IDENTITY_ENDPOINT": "http://127.0.0.1:9/msi/token",
            "IDENTITY_HEADER": "none",
            "AZURE_TOKEN_CREDENTIALS": "prod",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "BENCH_CONTAINER": CONTAINER,
            "BENCH_CONCURRENCY": str(CONCURRENCY),
        }
        from azure.storage.blob import BlobServiceClient

        admin = BlobServiceClient.from_connection_string(connection_string).get_container_client(CONTAINER)
        admin.create_container()
        # The blobs every tool downloads, stored once (by the SDK, with Content-MD5 on the small ones).
        with open(big, "rb") as f:
            admin.upload_blob("stored/big.bin", f, max_concurrency=CONCURRENCY)
        for path in tree.rglob("*.bin"):
            admin.upload_blob(f"stored/tree/{path.relative_to(tree).as_posix()}", path.read_bytes())
        root = f"wasbs://{CONTAINER}@{HOST}"
        big_uri, tree_uri = f"{root}/stored/big.bin", f"{root}/stored/tree"
        downloads = base / "downloads"

        def run_one(tool: str, op: str, source: str) -> tuple[float, float]:
            shutil.rmtree(downloads, ignore_errors=True)
            downloads.mkdir()  # MLflow wants the destination to exist
            target = str(downloads) if op.startswith("download") else f"{root}/up/{uuid.uuid4().hex}"
            return measure([pythons[tool], "-c", WORKER, tool, op, source, target], env)

        cases = transfer_cases(args.size_mib, args.files, str(big), big_uri, str(tree), tree_uri)
        compare(cases, tools, args.repeat, run_one, reference="sdk")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
