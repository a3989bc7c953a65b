"""The scripts find or make a uv without touching the system's Python (scripts/_env.sh)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import REPO, run, uv


def _path_without_uv() -> str:
    return os.pathsep.join(
        d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "uv").exists()
    )


def test_without_uv_on_path_the_scripts_use_a_private_one() -> None:
    env = {**os.environ, "PATH": _path_without_uv(), "UV_INTERNAL__PARENT_INTERPRETER": sys.executable}
    shown = run(
        [
            "bash",
            "-c",
            'source scripts/_env.sh; echo "${UV[*]}"; echo "parent=${UV_INTERNAL__PARENT_INTERPRETER-}"',
        ],
        cwd=REPO,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    used, parent = shown.stdout.split()
    assert used == str(REPO / "tools" / "uv" / "bin" / "uv")
    # `python -m uv` sets this; left set, nested `uv pip` calls ignore VIRTUAL_ENV.
    assert parent == "parent="


def test_tool_venvs_get_their_packages(tmp_path: Path) -> None:
    # scripts/install fills tools/venvs/<name> with `uv pip install --python <venv>`: even with
    # the variable `python -m uv` leaves behind, the package lands in that venv, not elsewhere.
    venv = tmp_path / "tool"
    assert run([uv(), "venv", "--quiet", str(venv)]).returncode == 0
    env = {**os.environ, "UV_INTERNAL__PARENT_INTERPRETER": sys.executable}
    installed = run(
        [uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--no-deps", "six"],
        env=env,
    )
    assert installed.returncode == 0, installed.stderr
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import six"], check=False)
    assert probe.returncode == 0
