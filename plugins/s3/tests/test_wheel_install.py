"""A wheel install (not editable, not from the workspace) of ``mlartifacts[s3]`` works against S3.

The install-shape tests prove the dependency closure from a checkout; this one builds
the wheels a release would publish (`uv build`), installs them into a fresh virtual
environment as pip users would get them, and round-trips an artifact through SeaweedFS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import SeaweedFS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import json, os, shutil, sys, tempfile
import mlartifacts
from mlartifacts import ArtifactStore
d = tempfile.mkdtemp()
open(os.path.join(d, "model.bin"), "wb").write(b"weights" * 1000)
with ArtifactStore(sys.argv[1]) as store:
    store.log_artifact(os.path.join(d, "model.bin"), "model")
    listed = [f.path for f in store.list_artifacts("model")]
    back = store.download_artifacts("model/model.bin", os.path.join(d, "out"))
    ok = open(back, "rb").read() == b"weights" * 1000
    store.delete_artifacts()
shutil.rmtree(d)
print(json.dumps({"listed": listed, "ok": ok, "plugin": store.plugin, "core": mlartifacts.__file__}))
"""


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    assert Path(found).exists(), "uv is installed by scripts/install (the dev group)"
    return found


def test_wheels_of_core_and_s3_round_trip(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV")}
    dist = tmp_path / "dist"
    for package in ("core", "plugins/nfs", "plugins/s3"):
        built = subprocess.run(
            [_uv(), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(REPO / package)],
            capture_output=True, text=True, check=False, env=env,
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
    wheels = {p.name.split("-")[0]: p for p in dist.glob("*.whl")}
    assert set(wheels) == {"mlartifacts", "mlartifacts_nfs", "mlartifacts_s3"}
    venv = tmp_path / "venv"
    assert subprocess.run([_uv(), "venv", "--quiet", str(venv)], check=False, env=env).returncode == 0
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [_uv(), "pip", "install", "--quiet", "--python", python, "--no-sources",
         f"mlartifacts[s3] @ {wheels['mlartifacts'].as_uri()}", str(wheels["mlartifacts_nfs"]),
         str(wheels["mlartifacts_s3"])],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    probe_env = {
        **{k: v for k, v in env.items() if not k.startswith(("AWS_", "MLFLOW_S3_"))},
        **seaweedfs.user_env(),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    uri = f"s3://{seaweedfs.bucket}/wheel-install/{tmp_path.name}"
    probe = subprocess.run(
        [python, "-c", PROBE, uri], capture_output=True, text=True, check=False, env=probe_env, cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result["listed"] == ["model/model.bin"]
    assert (result["ok"], result["plugin"]) == (True, "s3")
    # The core came from the wheel, inside the venv, not from this checkout.
    assert result["core"].startswith(str(venv)) and "site-packages" in result["core"]
