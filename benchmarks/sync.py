"""What ``sync`` costs: a first sync, a re-run over an unchanged tree, and one changed file.

    uv run python benchmarks/sync.py [--files 10000] [--file-kib 4] [--repeat 3] [--cases local,s3,service]

For each destination (a local-disk store; S3 on a SeaweedFS this script starts on
127.0.0.1 and stops by PID; the artifacts service, ``mlartifacts server`` on local
disk, in a subprocess) it times, in this process:

- ``first sync``: local tree -> empty destination (every file copied);
- ``re-sync, unchanged``: the same again (nothing to copy), the median of ``--repeat``;
- ``re-sync, 1 changed``: one file rewritten with another size;
- ``download re-sync``: destination -> a local copy already in sync;
- reference ``full upload``: ``upload_tree`` of the whole tree to another prefix
  (first, so both start cold), what a tool without sync (``cp -r``,
  ``log_artifacts``) does on every run.

It also times hashing the whole local tree (SHA-256, in parallel): what an unchanged
re-run adds where the other side's listing carries digests.

Next to each time it prints the plugin hooks the run called (pluggy's hook-call
monitoring on the registry) and, for S3, the HTTP requests botocore sent: an
unchanged re-run must show listings only. SeaweedFS and the service run on the same
machine and compete for its cores.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from mlartifacts import ArtifactStore, Settings, default_registry
from mlartifacts._trees import LocalTree
from mlartifacts.testing.servers import start_artifacts_server

# No metadata probes, whatever the SDK: everything here talks to 127.0.0.1.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


class Calls:
    """Counts the plugin hooks called while active (pluggy's hook-call monitoring)."""

    def __init__(self) -> None:
        self.hooks: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()

    def __enter__(self) -> Calls:
        def before(hook_name: str, _impls: Any, _kwargs: Any) -> None:
            self.hooks[hook_name] += 1

        self._undo = default_registry().pm.add_hookcall_monitoring(before, lambda *a: None)
        return self

    def __exit__(self, *exc: object) -> None:
        self._undo()

    def describe(self) -> str:
        hooks = ", ".join(f"{n} x{c}" for n, c in sorted(self.hooks.items()) if n not in _QUIET)
        text = hooks or "none"
        if self.requests:
            text += "; S3: " + ", ".join(f"{n} x{c}" for n, c in sorted(self.requests.items()))
        return text


# Asked once per store (its capabilities and limits), whatever it then does.
_QUIET = {"capabilities", "supports_multipart", "schemes", "resolve_uri"}


def make_tree(root: Path, files: int, size: int) -> Path:
    """``files`` files of ``size`` random bytes, 100 per directory."""
    for i in range(files):
        path = root / f"d{i // 100:03d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return root


def timed(fn: Callable[[], Any], s3_client: Any = None) -> tuple[float, Any, Calls]:
    calls = Calls()
    undo: Callable[[], None] | None = None
    if s3_client is not None:

        def record(request: Any, event_name: str, **_: Any) -> None:
            calls.requests[event_name.rsplit(".", 1)[-1]] += 1

        unique = f"bench-{uuid.uuid4().hex}"
        s3_client.meta.events.register("before-send.s3", record, unique_id=unique)
        undo = lambda: s3_client.meta.events.unregister("before-send.s3", unique_id=unique)  # noqa: E731
    with calls:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    if undo is not None:
        undo()
    return elapsed, result, calls


def row(case: str, seconds: float, result: Any, calls: Calls) -> None:
    moved = (
        f"copied {len(result.copied)}, skipped {result.skipped}" if hasattr(result, "copied") else "all files"
    )
    print(f"| {case} | {seconds:.3f} s | {moved} | {calls.describe()} |", flush=True)


def run_case(name: str, uri: str, tree: Path, work: Path, repeat: int, s3_client: Any = None) -> None:
    print(f"\n### {name}: {uri.split('?')[0]}\n")
    print("| run | time | files | hooks called |")
    print("|---|---|---|---|")
    with ArtifactStore(f"{uri.rstrip('/')}-full", settings=Settings.from_env()) as full:
        client = s3_client(full) if s3_client else None
        seconds, _, calls = timed(lambda: full.upload_tree(str(tree)), client)
        row("reference: full upload (upload_tree)", seconds, None, calls)
    with ArtifactStore(uri, settings=Settings.from_env()) as store:
        client = s3_client(store) if s3_client else None
        row("first sync", *timed(lambda: store.sync_from(tree), client))
        runs = [timed(lambda: store.sync_from(tree), client) for _ in range(repeat)]
        median = statistics.median(t for t, _, _ in runs)
        _, result, calls = runs[0]
        row(f"re-sync, unchanged (median of {repeat})", median, result, calls)
        changed = next(iter(sorted(tree.rglob("*.bin"))))
        changed.write_bytes(os.urandom(changed.stat().st_size + 1))
        row("re-sync, 1 changed", *timed(lambda: store.sync_from(tree), client))
        back = work / f"back-{name}"
        store.sync(back)
        runs = [timed(lambda: store.sync(back), client) for _ in range(repeat)]
        _, result, calls = runs[0]
        row(
            f"download re-sync, unchanged (median of {repeat})",
            statistics.median(t for t, _, _ in runs),
            result,
            calls,
        )


def seaweedfs(base: Path) -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).parent))
    from s3_seaweedfs import BUCKET, running_seaweedfs, s3_child_env

    with running_seaweedfs(base) as (endpoint, _):
        os.environ.update(s3_child_env({}, endpoint, base))
        yield f"s3://{BUCKET}/sync/{uuid.uuid4().hex}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--file-kib", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", default="local,s3,service")
    parser.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    args = parser.parse_args()
    cases = args.cases.split(",")

    base = Path(tempfile.mkdtemp(prefix="mlartifacts-sync-bench-", dir=args.dir))
    try:
        tree = make_tree(base / "tree", args.files, args.file_kib * 1024)
        workers = Settings.from_env().max_workers
        print(f"{args.files} files of {args.file_kib} KiB; {workers} workers")
        local = LocalTree.scan(str(tree))
        start = time.perf_counter()
        local.with_digests([(rel, "sha256") for rel in local.files], workers)
        print(
            f"SHA-256 of the whole local tree: {time.perf_counter() - start:.3f} s "
            "(what an unchanged re-run adds where the other side's listing carries digests)"
        )
        if "local" in cases:
            run_case("local disk", str(base / "store"), tree, base, args.repeat)
        if "s3" in cases:
            for uri in seaweedfs(base / "seaweedfs"):
                run_case("S3 (SeaweedFS)", uri, tree, base, args.repeat, lambda s: s.backend.root.client)
        if "service" in cases:
            process, url = start_artifacts_server(str(base / "served"), base / "server.log", dict(os.environ))
            try:
                service = f"{url}/api/2.0/mlflow-artifacts/artifacts/sync"
                run_case("artifacts service (local disk)", service, tree, base, args.repeat)
            finally:
                process.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
