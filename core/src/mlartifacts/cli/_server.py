"""``server``, ``gc`` and ``hash-password``: the commands of operators."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from .. import gc
from ..config import Settings
from ..store import ArtifactStore

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    server = commands.add_parser(
        "server",
        add_help=False,  # -h is --host, as in `mlflow server`
        help="run the artifacts service (MLflow's mlflow-artifacts API) in front of any destination",
        description=(
            "Serve MLflow's artifacts REST API so clients (ours, and MLflow's own) upload, download "
            "and list artifacts without storage credentials. Unset options fall back to MLflow's "
            "variables (MLFLOW_ARTIFACTS_DESTINATION, MLFLOW_DEFAULT_ARTIFACT_ROOT, MLFLOW_HOST, "
            "MLFLOW_PORT, MLFLOW_WORKERS, MLFLOW_STATIC_PREFIX, MLFLOW_EXPOSE_PROMETHEUS), "
            "MLARTIFACTS_AUTH_USERS_FILE / MLARTIFACTS_AUTH_TOKENS_FILE and MLARTIFACTS_ACCESS_LOG_FORMAT."
        ),
    )
    option = server.add_argument
    option("--help", action="help", help="show this help message and exit")
    option(
        "--artifacts-destination",
        metavar="URI",
        help="where artifacts are stored; any URI a plugin resolves (default: ./mlartifacts)",
    )
    option(
        "--default-artifact-root",
        metavar="URI",
        help="reported in /server-info for tracking servers that point here",
    )
    option(
        "--artifacts-only",
        action="store_true",
        default=None,
        help="accepted for compatibility with `mlflow server`: this server only serves artifacts",
    )
    option("-h", "--host", help="address to listen on (default: 127.0.0.1)")
    option("-p", "--port", type=int, help="port (default: 5000)")
    option("-w", "--workers", type=int, help="worker processes (default: 1)")
    option("--static-prefix", help="a path prefix for every route, e.g. /mlflow")
    option(
        "--users-file",
        metavar="FILE",
        help="require HTTP Basic auth: lines 'name:password' (the password may be a hash from "
        "`mlartifacts hash-password`)",
    )
    option("--tokens-file", metavar="FILE", help="require bearer tokens: one per line (or sha256:<hex>)")
    option(
        "--allowed-hosts",
        metavar="HOSTS",
        help="comma-separated Host headers to serve, '*' patterns allowed (default: localhost, "
        "loopback and private addresses); refuses DNS-rebinding pages",
    )
    option(
        "--cors-allowed-origins",
        metavar="ORIGINS",
        help="comma-separated origins whose browser pages may call the API (default: localhost origins)",
    )
    option("--x-frame-options", metavar="VALUE", help="X-Frame-Options header (default: SAMEORIGIN)")
    option(
        "--disable-security-middleware",
        action="store_true",
        default=None,
        help="turn the Host and cross-origin checks off (only behind a proxy that does them)",
    )
    option(
        "--expose-prometheus",
        metavar="DIR",
        help="serve Prometheus metrics at /metrics; DIR holds the workers' shared samples "
        "(created if missing; its *.db files are cleared at start)",
    )
    option(
        "--access-log-format",
        choices=("text", "json"),
        help="access log lines: 'text' (default) or 'json' (one object per line: request id, user, "
        "route, status, bytes, duration)",
    )
    server.set_defaults(handler=cmd_server)

    collect = commands.add_parser(
        "gc",
        help="permanently delete runs' artifacts and stale multipart uploads from a destination",
        description=(
            "Delete the artifacts of runs (both <experiment_id>/<run_id>/ and "
            "experiments/<experiment_id>/<run_id>/ layouts) and/or abort incomplete multipart uploads."
        ),
    )
    collect.add_argument("--artifacts-destination", metavar="URI")
    collect.add_argument("--run-ids", default="", help="comma-separated run ids whose artifacts to delete")
    collect.add_argument(
        "--incomplete-uploads-older-than",
        metavar="AGE",
        help="abort multipart uploads started more than AGE ago (e.g. 24h, 7d)",
    )
    collect.add_argument(
        "--transfer-journals-older-than",
        metavar="AGE",
        help="forget this machine's resumable transfers begun more than AGE ago: their journals and "
        "partial downloads (MLARTIFACTS_STATE_DIR); needs no destination",
    )
    collect.add_argument(
        "--dry-run", action="store_true", help="report what would be removed; remove nothing"
    )
    collect.add_argument("--json", action="store_true", help="machine-readable report")
    collect.set_defaults(handler=cmd_gc)

    hasher = commands.add_parser(
        "hash-password",
        help="hash a password for `server --users-file` (reads it from the terminal or stdin)",
    )
    hasher.set_defaults(handler=cmd_hash_password)


def cmd_server(args: argparse.Namespace) -> int:
    import dataclasses

    from ..server import ServerConfig, run

    defaults = ServerConfig.defaults_from_env()
    given = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(ServerConfig)
        if getattr(args, field.name, None) is not None
    }
    run(dataclasses.replace(defaults, **given))
    return 0


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def cmd_gc(args: argparse.Namespace) -> int:
    run_ids = [r.strip() for r in args.run_ids.split(",") if r.strip()]
    remote = bool(run_ids or args.incomplete_uploads_older_than)
    if not remote and not args.transfer_journals_older_than:
        print(
            "mlartifacts gc: nothing to do: give --run-ids, --incomplete-uploads-older-than "
            "and/or --transfer-journals-older-than",
            file=sys.stderr,
        )
        return 2
    if remote and not args.artifacts_destination:
        print(
            "mlartifacts gc: --artifacts-destination is required with --run-ids and uploads", file=sys.stderr
        )
        return 2
    verb = "would remove" if args.dry_run else "removed"
    report: dict[str, Any] = {"dry_run": args.dry_run, "runs": [], "uploads": [], "bytes_freed": 0}
    if args.transfer_journals_older_than:
        journals = gc.stale_journals(
            Settings.from_env(), gc.parse_duration(args.transfer_journals_older_than)
        )
        if not args.dry_run:
            journals = gc.remove_journals(journals)
        report["journals"] = [
            {"journal": j.path, "kind": j.kind, "created": j.created, **_described(j.header)}
            for j in journals
        ]
    if not remote:
        return _gc_report(report, args, verb)
    with ArtifactStore(args.artifacts_destination) as store:
        if run_ids:
            runs = gc.find_runs(store, run_ids)
            if not args.dry_run:
                gc.remove_runs(store, runs)
            for run in runs:
                report["runs"].append(
                    {"run_id": run.run_id, "path": run.path, "files": run.files, "bytes": run.bytes}
                )
                report["bytes_freed"] += run.bytes
            missing = sorted(set(run_ids) - {run.run_id for run in runs})
            report["not_found"] = missing
        if args.incomplete_uploads_older_than:
            uploads = gc.stale_uploads(store, gc.parse_duration(args.incomplete_uploads_older_than))
            for upload in uploads:
                if not args.dry_run:
                    store.backend.abort_multipart(upload.path, upload.upload_id)
                report["uploads"].append(
                    {
                        "path": upload.path,
                        "upload_id": upload.upload_id,
                        "initiated": upload.initiated,
                        "bytes": upload.size,
                    }
                )
                report["bytes_freed"] += upload.size or 0
    return _gc_report(report, args, verb)


def _described(header: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("source", "destination", "upload_id", "partial")
    return {k: header[k] for k in keys if header and k in header}


def _gc_report(report: dict[str, Any], args: argparse.Namespace, verb: str) -> int:
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for journal in report.get("journals", []):
        what = journal.get("destination") or journal.get("source") or journal["journal"]
        print(f"{'would forget' if args.dry_run else 'forgot'} resumable {journal['kind']} of {what}")
    for run in report["runs"]:
        print(f"{verb} run {run['run_id']}: {run['path']}/ ({run['files']} files, {_size(run['bytes'])})")
    for run_id in report.get("not_found", []):
        print(f"no artifacts found for run {run_id}")
    for upload in report["uploads"]:
        verb_upload = "would abort" if args.dry_run else "aborted"
        size = "" if upload["bytes"] is None else f" ({_size(upload['bytes'])})"
        print(f"{verb_upload} incomplete upload {upload['upload_id']} of {upload['path'] or '.'}{size}")
    print(f"{'would free' if args.dry_run else 'freed'} {_size(report['bytes_freed'])}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from ..server import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("mlartifacts: error: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("mlartifacts: error: empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0
