"""Helpers shared by the cross-package tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# MLflow's client and server (used to prove compatibility) send telemetry by default.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

REPO = Path(__file__).resolve().parents[1]

#: Top-level modules of the storage SDKs that only a URI needing them may import.
SDK_MODULES = ("boto3", "botocore", "s3transfer", "obstore", "google", "azure", "paramiko", "pyarrow")
#: Distributions of those SDKs (and their heavy companions) for closure checks.
SDK_DISTRIBUTIONS = (
    "boto3",
    "botocore",
    "s3transfer",
    "obstore",
    "google-",
    "azure-",
    "paramiko",
    "pyarrow",
)


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        pytest.fail("uv is not installed: run scripts/install (it installs the dev group, which has uv)")
    return found


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
