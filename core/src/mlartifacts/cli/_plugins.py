"""``mlartifacts plugins``: what is installed, what it can do, and what failed to load."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from .._registry import PluginRegistry, default_registry
from ..errors import ArtifactError

__all__ = ["add_command", "describe_plugins"]


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "plugins",
        help="list installed backend plugins, their schemes, capabilities and load errors",
        description="List every plugin found through the 'mlartifacts' entry points.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=cmd_plugins)


def describe_plugins(registry: PluginRegistry) -> list[dict[str, Any]]:
    """One dict per plugin: name, distribution, version, schemes, capabilities, status, error."""
    rows = []
    for record in registry.records():
        row: dict[str, Any] = {
            "name": record.name,
            "distribution": record.distribution,
            "version": record.version,
            "schemes": list(record.schemes),
            "status": record.status,
            "error": record.error,
            "hint": record.hint if record.status == "failed" else None,
            "conflicts": list(record.conflicts),
            "capabilities": None,
        }
        if record.status == "loaded":
            row["capabilities"] = _capabilities(registry, record.name)
        rows.append(row)
    return rows


def _capabilities(registry: PluginRegistry, name: str) -> dict[str, Any] | str:
    handle = registry.handle(name)
    try:
        caps = handle.call("capabilities", root=None) if handle.implements("capabilities") else None
        limits = (
            handle.call("supports_multipart", root=None) if handle.implements("supports_multipart") else None
        )
    except (ArtifactError, Exception) as exc:  # noqa: BLE001 - report, never crash the listing
        return f"error: {type(exc).__name__}: {exc}"
    result: dict[str, Any] = dataclasses.asdict(caps) if caps is not None else {}
    result["multipart"] = dataclasses.asdict(limits) if limits is not None else None
    return result


def cmd_plugins(args: argparse.Namespace) -> int:
    rows = describe_plugins(default_registry())
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for row in rows:
        schemes = ", ".join(repr(s) if s else "(paths)" for s in row["schemes"]) or "-"
        version = f"{row['distribution']} {row['version']}" if row["distribution"] else "(not installed)"
        print(f"{row['name']:<10} {row['status']:<9} {version:<28} schemes: {schemes}")
        caps = row["capabilities"]
        if isinstance(caps, dict):
            flags = [k for k, v in caps.items() if k != "multipart" and v]
            if caps.get("multipart"):
                flags.insert(0, "multipart")
            print(f"{'':<10} capabilities: {', '.join(flags) or 'basic'}")
        elif caps:
            print(f"{'':<10} capabilities: {caps}")
        if row["error"]:
            hint = f" ({row['hint']})" if row["hint"] else ""
            print(f"{'':<10} {row['error']}{hint}")
        for conflict in row["conflicts"]:
            print(f"{'':<10} warning: {conflict}")
    return 0
