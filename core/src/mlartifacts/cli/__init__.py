"""The ``mlartifacts`` command line: cp, ls, rm, sync, verify, server, gc, plugins.

Exit status: 0 on success, 1 with a one-line message on stderr for an expected
failure (not found, no plugin, bad path, refused credentials...), 2 for usage
errors, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .._version import __version__
from ..errors import ArtifactError
from . import _files, _plugins, _server, _sync

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlartifacts",
        description="Store, list and move machine-learning artifacts on any backend.",
    )
    parser.add_argument("--version", action="version", version=f"mlartifacts {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _files.add_commands(commands)
    _sync.add_commands(commands)
    _server.add_commands(commands)
    _plugins.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line and exit with its status."""
    sys.exit(run(argv))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status instead of exiting."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ArtifactError as exc:
        print(f"mlartifacts: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mlartifacts: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mlartifacts ls ... | head`
        return 0
