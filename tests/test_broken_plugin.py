"""A broken third-party distribution, installed for real (a dist-info on the path):
`mlartifacts plugins` reports it, and the nfs backend keeps working."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from .conftest import run


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    info = site / "mlartifacts_cloudy-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlartifacts-cloudy\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[mlartifacts]\ncloudy = mlartifacts_cloudy\n")
    (site / "mlartifacts_cloudy.py").write_text("import cloudy_sdk_that_is_not_installed\n")
    return site


def mlartifacts(site: Path, *args: str, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = run([sys.executable, "-c", "from mlartifacts.cli import main; main()", *args], env=env, cwd=cwd)
    return done.returncode, done.stdout, done.stderr


def test_broken_plugin_is_reported_and_isolated(broken_site: Path, tmp_path: Path) -> None:
    code, out, err = mlartifacts(broken_site, "plugins", "--json", cwd=tmp_path)
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    cloudy = rows["cloudy"]
    assert cloudy["status"] == "failed"
    assert cloudy["distribution"] == "mlartifacts-cloudy" and cloudy["version"] == "1.2.3"
    assert "ModuleNotFoundError" in cloudy["error"] and "cloudy_sdk_that_is_not_installed" in cloudy["error"]
    assert cloudy["hint"] == "pip install --force-reinstall 'mlartifacts-cloudy'"
    assert rows["nfs"]["status"] == "loaded"

    code, out, _ = mlartifacts(broken_site, "plugins", cwd=tmp_path)
    assert "cloudy     failed" in out and "cloudy_sdk_that_is_not_installed" in out

    (tmp_path / "model.bin").write_bytes(b"weights")
    code, _, err = mlartifacts(broken_site, "cp", "model.bin", "store/", cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path / "store" / "model.bin").read_bytes() == b"weights"

    code, _, err = mlartifacts(broken_site, "ls", "cloudy://bucket", cwd=tmp_path)
    assert code == 1
    assert "no plugin handles scheme 'cloudy'" in err and "failed to load: cloudy" in err
    assert "Traceback" not in err
