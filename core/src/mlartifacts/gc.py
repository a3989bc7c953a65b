"""Garbage collection: deleted runs' artifacts, stale multipart uploads, stale transfer journals."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from . import paths
from ._types import PendingUpload
from .config import Settings
from .errors import ConfigError, NotFound
from .store import ArtifactStore
from .transfer._journal import JournalFile, journal_files, remove_journal, state_dir

__all__ = [
    "JournalFile",
    "RunArtifacts",
    "find_runs",
    "parse_duration",
    "remove_journals",
    "remove_runs",
    "stale_journals",
    "stale_uploads",
]

_RUN_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RunArtifacts:
    """One run's artifact directory under a destination, and what it holds."""

    run_id: str
    path: str
    files: int
    bytes: int


def parse_duration(text: str) -> float:
    """``"90"``, ``"30m"``, ``"24h"``, ``"7d"`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 3600, 30m, 24h, 7d)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def find_runs(store: ArtifactStore, run_ids: list[str]) -> list[RunArtifacts]:
    """The directories of these runs, in both MLflow layouts.

    ``<experiment_id>/<run_id>/`` (``mlflow-artifacts:/`` roots) and
    ``experiments/<experiment_id>/<run_id>/`` (the artifacts example's layout).
    """
    for run_id in run_ids:
        if not _RUN_ID.match(run_id):
            raise ConfigError(f"not a run id: {run_id!r}")
    experiments = [e.path for e in store.list_artifacts() if e.is_dir and e.path != "experiments"]
    experiments += [e.path for e in store.list_artifacts("experiments") if e.is_dir]
    found = []
    for run_id in run_ids:
        for experiment in experiments:
            candidate = paths.join(experiment, run_id)
            try:
                if not store.stat(candidate).is_dir:
                    continue
            except NotFound:
                continue
            sizes = [f.file_size or 0 for f in store.iter_files(candidate)]
            found.append(RunArtifacts(run_id, candidate, len(sizes), sum(sizes)))
    return found


def remove_runs(store: ArtifactStore, runs: list[RunArtifacts]) -> None:
    """Permanently delete the runs' directories."""
    for run in runs:
        store.delete_artifacts(run.path)


def stale_uploads(store: ArtifactStore, older_than: float, path: str = "") -> list[PendingUpload]:
    """Incomplete multipart uploads initiated more than ``older_than`` seconds ago."""
    cutoff = time.time() - older_than
    return [
        upload
        for upload in store.backend.list_multipart_uploads(paths.normalize(path))
        if upload.initiated is not None and upload.initiated < cutoff
    ]


def stale_journals(settings: Settings, older_than: float) -> list[JournalFile]:
    """Transfer journals (this machine's resumable transfers) begun more than ``older_than`` s ago."""
    cutoff = time.time() - older_than
    return [
        found
        for found in journal_files(state_dir(settings))
        if found.created is None or found.created < cutoff
    ]


def remove_journals(journals: list[JournalFile]) -> list[JournalFile]:
    """Remove journals and the partial downloads they kept; returns those removed (not in use).

    An upload's parts stay in the storage until ``stale_uploads`` finds them (a journal
    holds no credentials to abort them with).
    """
    return [found for found in journals if remove_journal(found)]
