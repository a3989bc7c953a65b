"""``sync`` and ``verify``: move only what differs, and check what is stored."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from ..config import Settings
from ..errors import InvalidPath
from ..store import ArtifactStore
from ..sync import COMPARE_MODES, SyncResult, sync
from ._files import _local_path
from ._progress import progress_for

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    sp = commands.add_parser(
        "sync",
        help="copy only new and changed files from SRC to DST (either side local or a URI)",
        description=(
            "Make DST hold the files of SRC: copy those missing at DST or different there "
            "(by SHA-256 digest where both sides know one, else by size; --compare mtime also "
            "copies files newer at SRC), in parallel. Either side is a local directory or an "
            "artifact URI (s3://, gs://, http(s):// artifacts service, ...). An unchanged tree "
            "costs two listings, no transfer."
        ),
    )
    sp.add_argument("src", metavar="SRC")
    sp.add_argument("dst", metavar="DST")
    sp.add_argument("--delete", action="store_true", help="delete files at DST that SRC does not have")
    sp.add_argument("-n", "--dry-run", action="store_true", help="print what would be done; change nothing")
    sp.add_argument(
        "--compare",
        choices=COMPARE_MODES,
        default="digest",
        help=(
            "digest (default): by digest where both sides know one (hashing a local file only then), "
            "else by size; size: by size only; mtime: by size, and copy when SRC is newer"
        ),
    )
    sp.add_argument("--json", action="store_true", help="print the result as one JSON object")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no per-file lines")
    sp.set_defaults(handler=cmd_sync)

    vp = commands.add_parser(
        "verify",
        help="check stored files against their recorded digests, or against a local directory",
        description=(
            "Read back every file below URI and check it against its recorded SHA-256 digest "
            "(nothing is written), or with --against compare URI's listing with a local "
            "directory (missing, extra, different size or digest). Files without a recorded "
            "digest are checked by the backend's checksum or their size and reported as "
            "unverifiable by digest; a file changed since its digest was recorded (by another "
            "tool: its size or time no longer match the record) is reported as changed. "
            "Exit status 1 when anything differs."
        ),
    )
    vp.add_argument("uri", metavar="URI")
    vp.add_argument("--against", metavar="LOCAL_DIR", help="compare with this local directory instead")
    vp.add_argument(
        "--require-digest", action="store_true", help="a file without a recorded digest is a failure"
    )
    vp.add_argument("--json", action="store_true", help="print the report as one JSON object")
    vp.add_argument("-q", "--quiet", action="store_true", help="no progress bar; only problems are listed")
    vp.set_defaults(handler=cmd_verify)


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"  # pragma: no cover - the loop always returns


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _print_sync(result: SyncResult, quiet: bool) -> None:
    if not quiet:
        for action in result.copied:
            print(f"copy    {action.path}  ({action.reason})")
        for action in result.deleted:
            print(f"delete  {action.path}")
    n = len(result.copied)
    verb = "would copy" if result.dry_run else "copied"
    parts = [f"{verb} {n} file{'s' if n != 1 else ''} ({_size(result.bytes_copied)})"]
    parts.append(f"skipped {result.skipped} unchanged")
    if result.deleted:
        parts.append(f"{'would delete' if result.dry_run else 'deleted'} {len(result.deleted)}")
    if result.kept:
        parts.append(f"kept {result.kept} only at the destination (--delete removes them)")
    print(("dry run: " if result.dry_run else "") + ", ".join(parts))


def cmd_sync(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    progress = progress_for("sync", settings, args.quiet or args.json)
    with contextlib.ExitStack() as stack:
        sides: list[ArtifactStore | str] = []
        for location in (args.src, args.dst):
            local = _local_path(location)
            if local is not None:
                sides.append(local)
            else:
                sides.append(stack.enter_context(ArtifactStore(location, settings=settings)))
        result = sync(
            sides[0],
            sides[1],
            delete=args.delete,
            dry_run=args.dry_run,
            compare=args.compare,
            progress=progress,
        )
    if args.json:
        json.dump(result.to_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_sync(result, args.quiet)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    progress = progress_for("verify", settings, args.quiet or args.json)
    against = _local_path(args.against) if args.against else None
    if args.against and against is None:
        raise InvalidPath(f"--against takes a local directory, not {args.against!r}")
    with ArtifactStore(args.uri, settings=settings) as store:
        report = store.verify(against=against, require_digest=args.require_digest, progress=progress)
    if args.json:
        json.dump(report.to_dict(), sys.stdout)
        sys.stdout.write("\n")
        return 0 if report.ok else 1
    for issue in sorted(report.issues, key=lambda i: i.path):
        print(f"{issue.problem:<10} {issue.path}: {issue.detail}")
    if not args.quiet and not args.require_digest:
        for path in sorted(report.size_only):
            print(f"{'unverified':<10} {path}: no digest recorded (size checked)")
    summary = (
        f"{_plural(report.files, 'file')}: {report.by_digest} verified by digest, "
        f"{report.by_checksum} by checksum, "
        f"{len(report.size_only)} unverifiable by digest (size checked); "
        f"{_plural(len(report.issues), 'problem')}"
    )
    print(summary)
    return 0 if report.ok else 1
