"""Many clients at once against `mlartifacts server` on local disk: throughput, latency, errors.

64 clients (4 processes x 16 threads by default) loop for --seconds over a mix of
what MLflow clients do: download a small artifact (55%), upload one (20%), list a
directory (15%), ask for a missing one (5%, a 404) and HEAD one (5%). Prints
requests per second, latency percentiles, every status seen and the server's peak
RSS. Anything but 200/404 counts as an error.

    python benchmarks/service_load.py --seconds 60 --clients 64
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, peak_rss_mib

from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

API = "/api/2.0/mlflow-artifacts/artifacts"
FILES = 200
BODY = os.urandom(10 * 1024)


def _client(base: str, seconds: float, threads: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    pool = urllib3.PoolManager(maxsize=threads, retries=False, timeout=30)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        seen: Counter[int] = Counter()
        while time.monotonic() < deadline:
            pick = rng.random()
            n = rng.randrange(FILES)
            started = time.perf_counter()
            try:
                if pick < 0.55:
                    r = pool.request("GET", f"{base}{API}/load/f{n}.bin")
                elif pick < 0.75:
                    r = pool.request("PUT", f"{base}{API}/load/up/{seed}-{n}.bin", body=BODY)
                elif pick < 0.90:
                    r = pool.request("GET", f"{base}{API}", fields={"path": "load"})
                elif pick < 0.95:
                    r = pool.request("GET", f"{base}{API}/load/missing-{n}.bin")
                else:
                    r = pool.request("HEAD", f"{base}{API}/load/f{n}.bin")
                seen[r.status] += 1
            except Exception:
                seen[0] += 1
            mine.append(time.perf_counter() - started)
        with lock:
            statuses.update(seen)
            latencies.extend(mine)

    workers = [threading.Thread(target=loop, args=(os.getpid() * 100 + i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((dict(statuses), latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlartifacts-load-") as tmp:
        destination = Path(tmp) / "artifacts"
        (destination / "load").mkdir(parents=True)
        for n in range(FILES):
            (destination / "load" / f"f{n}.bin").write_bytes(BODY)
        port = free_port()
        cmd = [sys.executable, "-c", "from mlartifacts.cli import main; main()", "server",
               "--artifacts-destination", str(destination), "--port", str(port)]  # fmt: skip
        with ServerProcess(cmd, Path(tmp) / "server.log", env=child_env()) as server:
            base = f"http://127.0.0.1:{port}"
            wait_for(http_ok(f"{base}/health"), 30, proc=server, what="mlartifacts server")
            queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
            per = max(1, args.clients // args.processes)
            procs = [
                multiprocessing.Process(target=_client, args=(base, args.seconds, per, queue))
                for _ in range(args.processes)
            ]
            started = time.monotonic()
            for p in procs:
                p.start()
            results = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            elapsed = time.monotonic() - started
            rss = peak_rss_mib(server.pid)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for seen, lat in results:
        statuses.update({int(k): v for k, v in seen.items()})
        latencies.extend(lat)
    total = sum(statuses.values())
    errors = sum(v for k, v in statuses.items() if k not in (200, 404))
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{per * args.processes} clients for {elapsed:.1f} s: {total} requests, {total / elapsed:.0f} req/s"
    )
    print(f"latency p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms")
    print(f"statuses {dict(sorted(statuses.items()))}, errors {errors}")
    print(f"server peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
