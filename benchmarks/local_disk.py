"""Local backend vs plain `cp` and `shutil` on the same disk: a large file and a tree of small files.

    uv run python benchmarks/local_disk.py [--size-mib 1024] [--files 1000] [--repeat 3] [--dir DIR]

Every measurement runs in its own child process (Python start-up included for the
Python tools), after a sync, tools interleaved across repeats; the median is shown. Source files
are in the page cache (they were just written). mlartifacts fsyncs every file it
writes before renaming it into place (atomic, durable writes), which cp and shutil
do not: the "no fsync" rows (MLARTIFACTS_NFS_FSYNC=false) compare like with like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from _common import child_env, make_inputs, measure

WORKER = r"""
import os, shutil, sys
op, src, dst = sys.argv[1:4]
if op.startswith("mlartifacts"):
    from mlartifacts import ArtifactStore
if op == "mlartifacts-upload-file":
    with ArtifactStore(dst) as store:
        store.log_artifact(src)
elif op == "mlartifacts-upload-tree":
    with ArtifactStore(dst) as store:
        store.log_artifacts(src)
elif op == "mlartifacts-download-file":
    with ArtifactStore(os.path.dirname(src)) as store:
        store.download_artifacts(os.path.basename(src), dst)
elif op == "mlartifacts-download-tree":
    with ArtifactStore(os.path.dirname(src)) as store:
        store.download_artifacts(os.path.basename(src), dst)
elif op == "shutil-file":
    os.makedirs(dst, exist_ok=True)
    shutil.copyfile(src, os.path.join(dst, os.path.basename(src)))
elif op == "shutil-tree":
    shutil.copytree(src, os.path.join(dst, os.path.basename(src)))
else:
    raise SystemExit(f"unknown op {op}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="mlartifacts-bench-", dir=args.dir)
    try:
        big, tree = make_inputs(base, args.size_mib, args.files)
        store = os.path.join(base, "store")
        py = [sys.executable, "-c", WORKER]
        # Stored copies for the download cases (made once, with plain cp).
        subprocess.run(["cp", big, os.path.join(base, "stored-big.bin")], check=True)
        subprocess.run(["cp", "-r", tree, os.path.join(base, "stored-tree")], check=True)
        stored_big, stored_tree = os.path.join(base, "stored-big.bin"), os.path.join(base, "stored-tree")

        cases = [
            (f"upload {args.size_mib} MiB file", args.size_mib, "MiB/s", [
                ("mlartifacts", [*py, "mlartifacts-upload-file", big, store]),
                ("  no fsync", [*py, "mlartifacts-upload-file", big, store]),
                ("shutil", [*py, "shutil-file", big, store]),
                ("cp", ["cp", big, store + "/"]),
            ]),
            (f"download {args.size_mib} MiB file", args.size_mib, "MiB/s", [
                ("mlartifacts", [*py, "mlartifacts-download-file", stored_big, store]),
                ("shutil", [*py, "shutil-file", stored_big, store]),
                ("cp", ["cp", stored_big, store + "/"]),
            ]),
            (f"upload {args.files} x 10 KiB tree", args.files, "files/s", [
                ("mlartifacts", [*py, "mlartifacts-upload-tree", tree, store]),
                ("  no fsync", [*py, "mlartifacts-upload-tree", tree, store]),
                ("shutil", [*py, "shutil-tree", tree, store]),
                ("cp", ["cp", "-r", tree, store + "/"]),
            ]),
            (f"download {args.files} x 10 KiB tree", args.files, "files/s", [
                ("mlartifacts", [*py, "mlartifacts-download-tree", stored_tree, store]),
                ("shutil", [*py, "shutil-tree", stored_tree, store]),
                ("cp", ["cp", "-r", stored_tree, store + "/"]),
            ]),
        ]  # fmt: skip

        print(f"{'case':<30} {'tool':<12} {'seconds':>9} {'rate':>15} {'peak RSS':>11}  speed")
        for title, amount, unit, tools in cases:
            times: dict[str, list[float]] = {tool: [] for tool, _ in tools}
            rss: dict[str, list[float]] = {tool: [] for tool, _ in tools}
            for _ in range(args.repeat):  # round-robin, so no tool always runs first
                for tool, cmd in tools:
                    shutil.rmtree(store, ignore_errors=True)
                    os.makedirs(store)
                    env = child_env()
                    if tool == "  no fsync":
                        env["MLARTIFACTS_NFS_FSYNC"] = "false"
                    seconds, peak = measure(cmd, env)
                    times[tool].append(seconds)
                    rss[tool].append(peak)
            medians = {tool: statistics.median(values) for tool, values in times.items()}
            for tool, _ in tools:
                ratio = medians["cp"] / medians[tool]
                print(
                    f"{title:<30} {tool:<12} {medians[tool]:>9.3f} {amount / medians[tool]:>9.0f} {unit:<5}"
                    f"{max(rss[tool]):>7.1f} MiB  {ratio:.2f}x cp"
                )
            print()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
