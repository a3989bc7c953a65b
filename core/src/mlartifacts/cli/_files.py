"""``cp``, ``ls`` and ``rm``: the file commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import unquote, urlsplit

from .._registry import scheme_of
from .._types import FileInfo
from ..config import Settings
from ..errors import InvalidPath, NotFound
from ..store import ArtifactStore
from ._progress import progress_for

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    cp = commands.add_parser(
        "cp",
        help="copy files between local paths and artifact URIs (either direction, or URI to URI)",
        description=(
            "Copy SRC to DST. Either side may be a local path or an artifact URI. With -r, "
            "the contents of the SRC directory are copied below DST. A DST ending in '/' or "
            "naming an existing directory receives SRC under its own name."
        ),
    )
    cp.add_argument("src", metavar="SRC")
    cp.add_argument("dst", metavar="DST")
    cp.add_argument("-r", "--recursive", action="store_true", help="copy a directory tree")
    cp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cp.set_defaults(handler=cmd_cp)

    ls = commands.add_parser("ls", help="list an artifact URI", description="List the entries of URI.")
    ls.add_argument("uri", metavar="URI")
    ls.add_argument("-r", "--recursive", action="store_true", help="every file at any depth")
    ls.add_argument(
        "--json", action="store_true", help="a JSON array of {path, is_dir, file_size, digest (sha256:<hex>)}"
    )
    ls.set_defaults(handler=cmd_ls)

    rm = commands.add_parser("rm", help="delete an artifact or tree", description="Delete URI.")
    rm.add_argument("uri", metavar="URI")
    rm.add_argument("-r", "--recursive", action="store_true", help="delete a directory tree")
    rm.set_defaults(handler=cmd_rm)


def _local_path(location: str) -> str | None:
    """The filesystem path of a plain path or ``file:`` URI; None for other URIs."""
    scheme = scheme_of(location)
    if scheme == "":
        return location
    if scheme == "file":
        return unquote(urlsplit(location).path)
    return None


def _is_dir(store: ArtifactStore) -> bool:
    try:
        return store.stat().is_dir
    except NotFound:
        return False


def cmd_cp(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    label = args.src.rstrip("/").rsplit("/", 1)[-1] or args.src
    progress = progress_for(label, settings, args.quiet)
    src_local = _local_path(args.src)
    dst_local = _local_path(args.dst)
    into_dir = args.dst.endswith("/")

    if src_local is not None:  # upload: local → any store (a plain DST is a local store)
        with ArtifactStore(args.dst, settings=settings) as dst:
            if os.path.isdir(src_local):
                if not args.recursive:
                    raise InvalidPath(f"{args.src} is a directory (use -r)")
                dst.upload_tree(src_local, "", progress)
                return 0
            if not os.path.exists(src_local):
                raise NotFound(f"{args.src}: no such file")
            name = os.path.basename(os.path.normpath(src_local))
            dst.upload_file(src_local, name if into_dir or _is_dir(dst) else "", progress)
        return 0

    with ArtifactStore(args.src, settings=settings) as src:
        info = src.stat()
        if info.is_dir and not args.recursive:
            raise InvalidPath(f"{args.src} is a directory (use -r)")
        if dst_local is not None:  # download
            if info.is_dir:
                src.download_tree("", dst_local, progress)
            else:
                target = dst_local
                if into_dir or os.path.isdir(dst_local):
                    target = os.path.join(dst_local, src.root_name)
                src.download_file("", target, progress)
            return 0
        with ArtifactStore(args.dst, settings=settings) as dst:  # URI → URI
            if info.is_dir:
                src.copy_tree_to("", dst, "", progress)
            else:
                name = src.root_name
                src.copy_to("", dst, name if into_dir or _is_dir(dst) else "", progress)
    return 0


def _row(info: FileInfo, root: str) -> dict[str, Any]:
    offset = len(root) + 1 if root else 0
    row: dict[str, Any] = {"path": info.path[offset:] or info.path, "is_dir": info.is_dir}
    if not info.is_dir:
        row["file_size"] = info.file_size
        if info.digest is not None:
            row["digest"] = f"sha256:{info.digest}"  # as the service's listing shows it
    return row


def cmd_ls(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]]
    with ArtifactStore(args.uri) as store:
        info = store.stat()
        if not info.is_dir:
            rows = [{**_row(info, ""), "path": store.root_name}]
        elif args.recursive:
            rows = sorted((_row(i, "") for i in store.iter_files()), key=lambda r: str(r["path"]))
        else:
            rows = [_row(i, "") for i in store.list_artifacts()]
    if args.json:
        json.dump(rows, sys.stdout)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        if row["is_dir"]:
            print(f"{'DIR':>14}  {row['path']}/")
        else:
            print(f"{row['file_size']:>14}  {row['path']}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    with ArtifactStore(args.uri) as store:
        info = store.stat()
        if info.is_dir and not args.recursive:
            raise InvalidPath(f"{args.uri} is a directory (use -r)")
        store.delete()
    return 0
