"""What the benchmarks here share: their inputs, run directories, child environments,
timing a child process with its peak RSS, and the side-by-side table of a comparison."""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

_RUNS = itertools.count()


def run_dir(base: str | Path, name: str) -> Path:
    """A new, empty directory for one measured run, left in place until the benchmark ends.

    Deleting the previous run's thousands of files just before the next run makes
    ext4 slow to create files for minutes (it skips recently freed inodes, reading
    inode tables to find them), which would charge the harness's deletions to
    whichever tool runs next. So runs never reuse directories, and trees are removed
    only with ``base``, at the end (a run that made one big file may go at once).
    """
    path = Path(base) / f"{name}-{next(_RUNS)}"
    path.mkdir(parents=True)
    return path


def child_env(**extra: str) -> dict[str, str]:
    """This environment for a measured child, with Python's bytecode cache allowed.

    Installed packages come with compiled bytecode; a shell that sets
    ``PYTHONDONTWRITEBYTECODE`` would otherwise make every run recompile every module
    it imports (both tools alike, but not what their users see).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def peak_rss_mib(pid: int) -> float:
    """The peak RSS (VmHWM) of a running process, in MiB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MiB) of that child alone.

    Peak RSS is the child's VmHWM, sampled every 2 ms: unlike ru_maxrss, it belongs
    to the program's own memory map, so it does not inherit this launcher's memory
    across exec.
    """
    os.sync()  # start every run with no dirty pages left by the previous one
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, peak_rss_mib(proc.pid))
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        shown = " ".join(arg for arg in cmd if "\n" not in arg)  # without the inline worker code
        raise SystemExit(f"{shown} failed with {proc.returncode}")
    return elapsed, peak


def make_inputs(base: str, size_mib: int, files: int) -> tuple[str, str]:
    """A ``size_mib`` file of random bytes and a tree of ``files`` 10 KiB files in 20 folders."""
    big = os.path.join(base, "input", "big.bin")
    tree = os.path.join(base, "input", "tree")
    os.makedirs(tree)
    block = os.urandom(8 << 20)
    with open(big, "wb") as f:
        for _ in range(size_mib // 8):
            f.write(block)
    for i in range(files):
        sub = os.path.join(tree, f"d{i % 20:02}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i:04}.bin"), "wb") as f:
            f.write(os.urandom(10 * 1024))
    return big, tree


#: One measured case: title, amount moved (MiB or files), its unit, the operation, its source.
Case = tuple[str, int, str, str, str]


def transfer_cases(size_mib: int, files: int, big: str, big_uri: str, tree: str, tree_uri: str) -> list[Case]:
    """The four cases every backend benchmark runs: a large file and a small-file tree, each way."""
    return [
        (f"upload {size_mib} MiB file", size_mib, "MiB/s", "upload-file", big),
        (f"download {size_mib} MiB file", size_mib, "MiB/s", "download-file", big_uri),
        (f"upload {files} x 10 KiB tree", files, "files/s", "upload-tree", tree),
        (f"download {files} x 10 KiB tree", files, "files/s", "download-tree", tree_uri),
    ]


def compare(
    cases: list[Case],
    tools: list[str],
    repeat: int,
    run_one: Callable[[str, str, str], tuple[float, float]],
    reference: str,
    skip: Callable[[str, str], bool] = lambda tool, op: False,
) -> None:
    """Run every case with every tool, round-robin ``repeat`` times, and print medians side by side.

    ``run_one(tool, op, source)`` runs one measured child and returns (seconds, peak RSS
    MiB); each row shows the tool's speed relative to ``reference`` (and to MLflow).
    """
    print(f"{'case':<30} {'tool':<12} {'seconds':>9} {'(min-max)':>15} {'rate':>15} {'peak RSS':>11}  speed")
    for title, amount, unit, op, source in cases:
        case_tools = [tool for tool in tools if not skip(tool, op)]
        times: dict[str, list[float]] = {tool: [] for tool in case_tools}
        rss: dict[str, list[float]] = {tool: [] for tool in case_tools}
        for _ in range(repeat):  # round-robin, so no tool always runs first
            for tool in case_tools:
                seconds, peak = run_one(tool, op, source)
                times[tool].append(seconds)
                rss[tool].append(peak)
        medians = {tool: statistics.median(values) for tool, values in times.items()}
        for tool in case_tools:
            ratios = f"{medians[reference] / medians[tool]:.2f}x {reference}"
            if "mlflow" in medians:
                ratios += f", {medians['mlflow'] / medians[tool]:.2f}x mlflow"
            spread = f"({min(times[tool]):.2f}-{max(times[tool]):.2f})"
            print(
                f"{title:<30} {tool:<12} {medians[tool]:>9.3f} {spread:>15} "
                f"{amount / medians[tool]:>9.1f} {unit:<7}{max(rss[tool]):>7.1f} MiB  {ratios}",
                flush=True,
            )
        print(flush=True)
