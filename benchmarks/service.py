"""The artifacts service in steady state: our server and client vs MLflow's, with the machine's limits.

    uv run python benchmarks/service.py [--scenarios local,s3] [--size-mib 1024] [--s3-size-mib 512]
                                        [--files 1000] [--repeat 3] [--only TEXT] [--dir DIR]

Scenarios: local disk (1 GiB file up and down) and S3 on SeaweedFS (512 MiB file and
1000 x 10 KiB tree, up and down). Per scenario, each server is started once and warmed
(a few PUT, GET and list rounds); then every operation runs in a fresh process, after
``os.sync()``, timing only the library call inside it (``ArtifactStore(uri).log_artifact``
/ ``log_artifacts`` / ``download_artifacts``, or MLflow's repository's), with the
contenders in a rotated order on each repetition. Medians of ``--repeat`` runs, with
the peak RSS of the client (VmHWM) and of the server (VmHWM of its process tree, reset
before each run through /proc/<pid>/clear_refs). Uploads go to a new run path each time,
as MLflow runs do (overwriting a 1 GiB file adds the old file's release to the rename).

Contenders:

- ``ours``: ``mlartifacts server`` with our client (on S3, presigned transfers as the
  server advertises them); ``ours-proxied``: the same with
  ``MLARTIFACTS_PRESIGNED_TRANSFERS=false``, every byte through the server;
- ``mlflow``: ``mlflow server --artifacts-only`` (MLflow 3.17, tools/venvs/mlflow) with
  MLflow's client; ``mlflow-mpu``: MLflow's client with its proxied multipart upload;
- ``mlflow-on-ours``: MLflow's client against our server;
- the machine's limits: ``cp``, ``cp`` then ``sync`` of the copy (``cp+fsync``, the durable
  reference for an upload) and a loopback TCP socket (local disk), our S3 backend
  straight to SeaweedFS (``s3-direct``) on S3.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from _common import child_env, make_inputs, peak_rss_mib
from s3_seaweedfs import BUCKET, running_seaweedfs, s3_child_env

from mlartifacts.testing.servers import ServerProcess, free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
MLFLOW_BIN = REPO / "tools" / "venvs" / "mlflow" / "bin"
API = "/api/2.0/mlflow-artifacts/artifacts"

# One operation, timed inside the child around the library call only.
WORKER = r"""
import sys, time
tool, op, url, local = sys.argv[1:5]
if tool == "mlflow":
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    started = time.perf_counter()
    repo = get_artifact_repository(url)
else:
    from mlartifacts import ArtifactStore
    started = time.perf_counter()
    repo = ArtifactStore(url)
if op == "upload-file":
    repo.log_artifact(local)
elif op == "upload-tree":
    repo.log_artifacts(local, "tree")
elif op == "download-file":
    repo.download_artifacts("big.bin", local)
else:
    repo.download_artifacts("tree", local)
print(time.perf_counter() - started)
"""

# The machine's socket limit: 1 GiB over loopback TCP, sent from memory, received into a buffer.
LOOPBACK = r"""
import socket, sys, threading, time
size = int(sys.argv[1])
server = socket.create_server(("127.0.0.1", 0))
def send():
    block = memoryview(bytes(8 << 20))
    with socket.create_connection(server.getsockname()) as s:
        sent = 0
        while sent < size:
            s.sendall(block[: min(len(block), size - sent)])
            sent += min(len(block), size - sent)
conn_thread = threading.Thread(target=send)
started = time.perf_counter()
conn_thread.start()
conn, _ = server.accept()
buffer = memoryview(bytearray(1 << 20))
got = 0
while got < size:
    n = conn.recv_into(buffer)
    if not n:
        break
    got += n
conn_thread.join()
print(time.perf_counter() - started)
"""


@dataclass
class Server:
    """A running artifacts server, its base URL, and the processes whose memory counts."""

    name: str
    proc: ServerProcess
    url: str

    def pids(self) -> list[int]:
        found = [self.proc.pid]
        index = 0
        while index < len(found):
            children = Path(f"/proc/{found[index]}/task/{found[index]}/children")
            if children.exists():
                found += [int(pid) for pid in children.read_text().split()]
            index += 1
        return found

    def reset_peak(self) -> None:
        for pid in self.pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM starts again from the RSS
            except OSError:
                pass

    def peak(self) -> float:
        return sum(peak_rss_mib(pid) for pid in self.pids())


Runner = Callable[[str, str], "tuple[float, float]"]  # (operation, run id) -> (seconds, client RSS)


@dataclass
class Contender:
    name: str
    run: Runner
    server: Server | None = None


@dataclass
class Case:
    title: str
    op: str
    amount: int
    unit: str
    contenders: list[Contender]
    limits: tuple[str, ...]  # the contenders that stand for the machine's limits here


def start_server(tool: str, destination: str, log: Path, env: dict[str, str]) -> Server:
    """A server started once for a scenario, answering and warmed."""
    port = free_port()
    if tool == "ours":
        cmd = [sys.executable, "-c", "from mlartifacts.cli import main; main()", "server"]
    else:
        cmd = [str(MLFLOW_BIN / "mlflow"), "server", "--artifacts-only"]
    cmd += ["--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(port)]
    # MLflow makes mlflow.db where it starts: the log's directory, not the checkout.
    proc = ServerProcess(cmd, log, env=env, cwd=str(log.parent)).start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            return True
        except OSError:
            return False

    try:
        wait_for(healthy, 120, proc=proc, what=f"{tool} server")
        server = Server(tool, proc, url)
        warm(server)
    except BaseException:
        proc.stop()
        raise
    return server


def warm(server: Server) -> None:
    """A few PUT, GET and list rounds, so the first measured run finds a warm server.

    MLflow's workers may still be starting when one of them answers /health: the
    first round is tried again for a while.
    """
    deadline = time.monotonic() + 60
    while True:
        try:
            return _rounds(server)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _rounds(server: Server) -> None:
    base = f"{server.url}{API}/warm-up"
    for i in range(5):
        # Two rounds large enough for a multipart write into S3: the storage allocates its
        # volumes and the server its part pool now, not in the first measured run.
        body = os.urandom((20 << 20) if i < 2 else 64 * 1024)
        request = urllib.request.Request(f"{base}/w{i}.bin", data=body, method="PUT")
        urllib.request.urlopen(request, timeout=60).read()
        assert urllib.request.urlopen(f"{base}/w{i}.bin", timeout=60).read() == body
        urllib.request.urlopen(f"{server.url}{API}?path=warm-up", timeout=60).read()


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run one measured child after a sync: (the seconds it printed, its peak RSS in MiB)."""
    os.sync()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mib(proc.pid))
        time.sleep(0.005)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(a for a in cmd if chr(10) not in a)} failed ({proc.returncode}):\n{err[-3000:]}"
        )
    return float(out.split()[-1]), peak


def timed(cmd: list[str]) -> tuple[float, float]:
    """A command timed from here (``cp``), after a sync; no RSS worth showing."""
    os.sync()
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started, 0.0


def library(
    tool: str, env: dict[str, str], url: Callable[[str, str], str], out: Path, sources: dict[str, Path]
) -> Runner:
    """A contender running WORKER with our interpreter or MLflow's."""
    python = str(MLFLOW_BIN / "python") if tool == "mlflow" else sys.executable

    def run(op: str, run_id: str) -> tuple[float, float]:
        if op.startswith("upload"):
            local = str(sources[op])
        else:
            target = out / run_id
            target.mkdir(parents=True)
            local = str(target)
        return child([python, "-c", WORKER, tool, op, url(op, run_id), local], env)

    return run


def service_url(server: Server) -> Callable[[str, str], str]:
    """Uploads to a new run path each time; downloads from what was stored beforehand."""
    return lambda op, run_id: (
        f"{server.url}{API}/" + (f"runs/{run_id}" if op.startswith("upload") else "stored")
    )


# -- the scenarios -----------------------------------------------------------------------------


def local_cases(
    base: Path, args: argparse.Namespace, env: dict[str, str], servers: list[Server]
) -> list[Case]:
    big = Path(make_inputs(str(base / "local"), args.size_mib, 0)[0])
    sources = {"upload-file": big}
    out = base / "local-out"
    started = {}
    for tool in ("ours", "mlflow"):
        destination = base / f"local-{tool}"
        (destination / "stored").mkdir(parents=True)
        shutil.copyfile(big, destination / "stored" / "big.bin")
        started[tool] = start_server(tool, str(destination), base / f"local-{tool}.log", env)
        servers.append(started[tool])
    ours, mlflow = started["ours"], started["mlflow"]

    def cp(op: str, run_id: str) -> tuple[float, float]:
        source = big if op == "upload-file" else base / "local-ours" / "stored" / "big.bin"
        target = (base / "local-ours" / "cp" if op == "upload-file" else out) / run_id
        target.mkdir(parents=True)
        return timed(["cp", str(source), str(target / "big.bin")])

    def cp_fsync(op: str, run_id: str) -> tuple[float, float]:
        # The durable reference for an upload: the copy, then its fsync (as our server does
        # before the rename); the rename itself costs nothing next to it.
        source = big if op == "upload-file" else base / "local-ours" / "stored" / "big.bin"
        target = (base / "local-ours" / "cp" if op == "upload-file" else out) / run_id
        target.mkdir(parents=True)
        copy = str(target / "big.bin")
        return timed(["sh", "-c", 'cp "$1" "$2" && sync "$2"', "cp+fsync", str(source), copy])

    def loopback(op: str, run_id: str) -> tuple[float, float]:
        return child([sys.executable, "-c", LOOPBACK, str(args.size_mib << 20)], env)

    contenders = [
        Contender("ours", library("ours", env, service_url(ours), out, sources), ours),
        Contender("mlflow", library("mlflow", env, service_url(mlflow), out, sources), mlflow),
        Contender("mlflow-on-ours", library("mlflow", env, service_url(ours), out, sources), ours),
        Contender("cp", cp),
        Contender("cp+fsync", cp_fsync),
        Contender("loopback", loopback),
    ]
    size = f"{args.size_mib} MiB file"
    return [
        Case(
            f"local disk: upload {size}",
            "upload-file",
            args.size_mib,
            "MiB/s",
            contenders,
            ("cp", "cp+fsync"),
        ),
        Case(
            f"local disk: download {size}", "download-file", args.size_mib, "MiB/s", contenders, ("loopback",)
        ),
    ]


def s3_cases(
    base: Path,
    args: argparse.Namespace,
    env: dict[str, str],
    servers: list[Server],
    stop: list[Callable[[], None]],
) -> list[Case]:
    big, tree = (Path(p) for p in make_inputs(str(base / "s3"), args.s3_size_mib, args.files))
    weed = contextlib.ExitStack()
    endpoint, admin = weed.enter_context(running_seaweedfs(base / "seaweedfs"))
    stop.append(weed.close)
    env = s3_child_env(env, endpoint, base)
    for prefix in ("ours", "mlflow"):  # what the downloads fetch, stored once per server
        admin.upload_file(str(big), BUCKET, f"{prefix}/stored/big.bin")
        for path in tree.rglob("*.bin"):
            admin.upload_file(str(path), BUCKET, f"{prefix}/stored/tree/{path.relative_to(tree).as_posix()}")
    started = {}
    for tool in ("ours", "mlflow"):
        started[tool] = start_server(tool, f"s3://{BUCKET}/{tool}", base / f"s3-{tool}.log", env)
        servers.append(started[tool])
    ours, mlflow = started["ours"], started["mlflow"]
    sources = {"upload-file": big, "upload-tree": tree}
    out = base / "s3-out"

    def direct(op: str, run_id: str) -> str:
        return f"s3://{BUCKET}/ours/" + (f"runs/{run_id}" if op.startswith("upload") else "stored")

    proxied_env = {**env, "MLARTIFACTS_PRESIGNED_TRANSFERS": "false"}
    mpu_env = {**env, "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true"}
    ours_c = Contender("ours", library("ours", env, service_url(ours), out, sources), ours)
    proxied = Contender("ours-proxied", library("ours", proxied_env, service_url(ours), out, sources), ours)
    mlflow_c = Contender("mlflow", library("mlflow", env, service_url(mlflow), out, sources), mlflow)
    mpu = Contender("mlflow-mpu", library("mlflow", mpu_env, service_url(mlflow), out, sources), mlflow)
    on_ours = Contender("mlflow-on-ours", library("mlflow", env, service_url(ours), out, sources), ours)
    direct_c = Contender("s3-direct", library("ours", env, direct, out, sources))
    size, files = f"{args.s3_size_mib} MiB file", f"{args.files} x 10 KiB"
    return [
        Case(f"S3: upload {size}", "upload-file", args.s3_size_mib, "MiB/s",
             [ours_c, proxied, mlflow_c, mpu, on_ours, direct_c], ("s3-direct",)),
        Case(f"S3: download {size}", "download-file", args.s3_size_mib, "MiB/s",
             [ours_c, proxied, mlflow_c, on_ours, direct_c], ("s3-direct",)),
        Case(f"S3: upload {files}", "upload-tree", args.files, "files/s",
             [ours_c, mlflow_c, on_ours, direct_c], ("s3-direct",)),
        Case(f"S3: download {files}", "download-tree", args.files, "files/s",
             [ours_c, mlflow_c, on_ours, direct_c], ("s3-direct",)),
    ]  # fmt: skip


# -- measuring and reporting -------------------------------------------------------------------


def measure_case(case: Case, repeat: int, base: Path) -> None:
    times: dict[str, list[float]] = {c.name: [] for c in case.contenders}
    client: dict[str, list[float]] = {c.name: [] for c in case.contenders}
    server: dict[str, list[float]] = {c.name: [] for c in case.contenders}
    for rep in range(repeat):
        turn = rep % len(case.contenders)
        for contender in case.contenders[turn:] + case.contenders[:turn]:  # a different one first each time
            if contender.server is not None:
                contender.server.reset_peak()
            seconds, rss = contender.run(case.op, uuid.uuid4().hex)
            times[contender.name].append(seconds)
            client[contender.name].append(rss)
            if contender.server is not None:
                server[contender.name].append(contender.server.peak())
            for leftover in (base / "local-out", base / "s3-out"):
                shutil.rmtree(leftover, ignore_errors=True)  # downloads, before the next run writes
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{case.title}")
    for contender in case.contenders:
        name = contender.name
        median, spread = medians[name], f"({min(times[name]):.2f}-{max(times[name]):.2f})"
        notes = []
        if "mlflow" in medians and name != "mlflow":
            notes.append(f"{medians['mlflow'] / median:.1f}x mlflow")
        for limit in case.limits:
            if name not in case.limits:
                notes.append(f"{100 * medians[limit] / median:.0f}% of {limit}")
        rss = f"{max(client[name]):6.0f} MiB" if max(client[name]) else "         -"
        srv = f"{max(server[name]):6.0f} MiB" if server[name] else "         -"
        print(
            f"  {name:<15} {median:7.2f} s {spread:>13} {case.amount / median:8.0f} {case.unit:<7} "
            f"client {rss}  server {srv}  {', '.join(notes)}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenarios", default="local,s3", help="comma-separated: local, s3")
    parser.add_argument("--size-mib", type=int, default=1024, help="the local-disk file")
    parser.add_argument("--s3-size-mib", type=int, default=512, help="the S3 file")
    parser.add_argument("--files", type=int, default=1000, help="10 KiB files in the S3 tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="run only the cases whose title contains this")
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()
    if not (MLFLOW_BIN / "mlflow").exists():
        raise SystemExit("tools/venvs/mlflow is missing: run scripts/install")
    env = child_env(
        MLFLOW_DISABLE_TELEMETRY="true",  # no telemetry (it would also wait on a closed network)
        DO_NOT_TRACK="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        AWS_EC2_METADATA_DISABLED="true",
    )
    print(f"{os.cpu_count()} cores; medians of {args.repeat}; load average {os.getloadavg()[0]:.1f} at start")
    for scenario in args.scenarios.split(","):
        base = Path(tempfile.mkdtemp(prefix=f"mlartifacts-service-{scenario}-", dir=args.dir))
        servers: list[Server] = []
        stop: list[Callable[[], None]] = []
        try:
            if scenario == "local":
                cases = local_cases(base, args, env, servers)
            elif scenario == "s3":
                cases = s3_cases(base, args, env, servers, stop)
            else:
                raise SystemExit(f"unknown scenario {scenario!r}")
            for case in cases:
                if args.only not in case.title:
                    continue
                measure_case(case, args.repeat, base)
        finally:
            for server in servers:
                server.proc.stop()
            for step in stop:
                step()
            if not os.environ.get("MLARTIFACTS_BENCH_KEEP"):
                shutil.rmtree(base, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
