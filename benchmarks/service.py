"""Through-proxy transfers: `mlartifacts server` and our client vs MLflow's server and client.

    uv run python benchmarks/service.py [--size-mib 1024] [--files 1000] [--repeat 3]
                                        [--cases upload-file,download-file,upload-tree,download-tree]

MLflow's side is `mlflow server --artifacts-only` with MLflow's own client, from
tools/venvs/mlflow (scripts/install builds it). Both servers store on the same
local disk with their default options. Each measurement starts a fresh server,
runs one client in its own process, and reports the median transfer time (timed
inside the client) with the peak RSS (VmHWM) of client and server.
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
from pathlib import Path

from _common import child_env, make_inputs, peak_rss_mib, run_dir

REPO = Path(__file__).resolve().parents[1]
MLFLOW_BIN = REPO / "tools" / "venvs" / "mlflow" / "bin"
API = "/api/2.0/mlflow-artifacts/artifacts"
# No telemetry from MLflow (it would also wait on this machine's closed network), no bars.
ENV = child_env(
    MLFLOW_DISABLE_TELEMETRY="true",
    DO_NOT_TRACK="true",
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
)

OURS = r"""
import os, sys, time
from mlartifacts import ArtifactStore
op, url, local = sys.argv[1:4]
started = time.perf_counter()
with ArtifactStore(url) as store:
    if op == "upload-file":
        store.log_artifact(local)
    elif op == "upload-tree":
        store.log_artifacts(local, "tree")
    elif op == "download-file":
        store.download_artifacts("big.bin", local)
    elif op == "download-tree":
        store.download_artifacts("tree", local)
print(time.perf_counter() - started)
"""

MLFLOW = r"""
import os, sys, time
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
op, url, local = sys.argv[1:4]
started = time.perf_counter()
repo = get_artifact_repository(url)
if op == "upload-file":
    repo.log_artifact(local)
elif op == "upload-tree":
    repo.log_artifacts(local, "tree")
elif op == "download-file":
    repo.download_artifacts("big.bin", local)
elif op == "download-tree":
    repo.download_artifacts("tree", local)
print(time.perf_counter() - started)
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_hwm_mib(pid: int) -> float:
    """Peak RSS of a process plus its children (MLflow's server runs uvicorn workers)."""
    total = peak_rss_mib(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += tree_hwm_mib(int(child))
    return total


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server not ready")


def start_server(tool: str, destination: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if tool == "ours":
        cmd = [sys.executable, "-c", "from mlartifacts.cli import main; main()", "server"]
    else:
        cmd = [str(MLFLOW_BIN / "mlflow"), "server", "--artifacts-only"]
    cmd += ["--artifacts-destination", str(destination), "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=destination.parent, env=ENV)
    wait_ready(port, proc)
    return proc, port


def run_client(tool: str, op: str, url: str, local: str) -> tuple[float, float]:
    """Run one client; return (seconds of the transfer itself, client peak RSS in MiB).

    The transfer is timed inside the client, so interpreter start-up and imports
    (about 5 s for `import mlflow` here) are left out on both sides.
    """
    python = sys.executable if tool == "ours" else str(MLFLOW_BIN / "python")
    code = OURS if tool == "ours" else MLFLOW
    os.sync()
    proc = subprocess.Popen([python, "-c", code, op, url, local], env=ENV, stdout=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mib(proc.pid))
        time.sleep(0.005)
    out = proc.stdout.read() if proc.stdout else b""
    if proc.returncode != 0:
        raise SystemExit(f"{tool} {op} failed ({proc.returncode})")
    return float(out.decode().split()[-1]), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cases",
        default="upload-file,download-file,upload-tree,download-tree",
        help="comma-separated subset of the cases to run",
    )
    args = parser.parse_args()
    wanted = set(args.cases.split(","))
    if not (MLFLOW_BIN / "mlflow").exists():
        raise SystemExit("tools/venvs/mlflow is missing: run scripts/install")

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-service-bench-"))
    try:
        file_cases = wanted & {"upload-file", "download-file"}
        big, tree = (Path(p) for p in make_inputs(str(base), args.size_mib if file_cases else 0, args.files))

        cases = [
            ("upload", "file", f"{args.size_mib} MiB file", args.size_mib, "MiB/s"),
            ("download", "file", f"{args.size_mib} MiB file", args.size_mib, "MiB/s"),
            ("upload", "tree", f"{args.files} x 10 KiB tree", args.files, "files/s"),
            ("download", "tree", f"{args.files} x 10 KiB tree", args.files, "files/s"),
        ]
        cases = [case for case in cases if f"{case[0]}-{case[1]}" in wanted]
        print(
            f"{'case':<34} {'tool':<8} {'seconds':>8} {'(min-max)':>11} {'rate':>14} "
            f"{'client RSS':>11} {'server RSS':>11}"
        )
        for direction, kind, title, amount, unit in cases:
            results: dict[str, tuple[list[float], list[float], list[float]]] = {
                "ours": ([], [], []),
                "mlflow": ([], [], []),
            }
            for _ in range(args.repeat):
                for tool in ("ours", "mlflow"):
                    destination = run_dir(base, f"dest-{tool}")
                    run_path = destination / "bench"
                    run_path.mkdir()
                    local = str(big if kind == "file" else tree)
                    if direction == "download":  # put the data there beforehand
                        if kind == "file":
                            shutil.copyfile(big, run_path / "big.bin")
                        else:
                            shutil.copytree(tree, run_path / "tree")
                        local = str(run_dir(base, f"out-{tool}"))
                    server, port = start_server(tool, destination, base / f"{tool}-server.log")
                    try:
                        url = f"http://127.0.0.1:{port}{API}/bench"
                        seconds, client_rss = run_client(tool, f"{direction}-{kind}", url, local)
                        server_rss = tree_hwm_mib(server.pid)
                    finally:
                        server.terminate()
                        server.wait(30)
                    results[tool][0].append(seconds)
                    results[tool][1].append(client_rss)
                    results[tool][2].append(server_rss)
                    if kind == "file":  # gigabytes, but one inode: freeing it costs the next run nothing
                        shutil.rmtree(destination)
                        if direction == "download":
                            shutil.rmtree(local)
            medians = {tool: statistics.median(r[0]) for tool, r in results.items()}
            for tool, (times, client, srv) in results.items():
                spread = f"({min(times):.2f}-{max(times):.2f})"
                print(
                    f"{direction + ' ' + title:<34} {tool:<8} {medians[tool]:>8.2f} {spread:>11} "
                    f"{amount / medians[tool]:>8.0f} {unit:<5} {max(client):>8.0f} MiB {max(srv):>8.0f} MiB"
                )
            print(f"{'':<34} ours at {medians['mlflow'] / medians['ours']:.1f}x MLflow\n")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
