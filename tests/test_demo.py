"""The README's main command (scripts/demo -> examples/demo.py) works as written."""

from __future__ import annotations

import sys
from pathlib import Path

from .conftest import REPO, run


def test_demo_logs_lists_and_downloads_under_mlruns(tmp_path: Path) -> None:
    done = run([sys.executable, str(REPO / "examples" / "demo.py")], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "byte-identical: True" in done.stdout
    runs = list((tmp_path / "mlruns" / "0").iterdir())
    assert len(runs) == 1
    artifacts = runs[0] / "artifacts"
    files = sorted(p.relative_to(artifacts).as_posix() for p in artifacts.rglob("*") if p.is_file())
    assert files == ["metrics.json", "model/model.bin", "plots/loss.png", "plots/roc.png"]
    assert (artifacts / "model" / "model.bin").stat().st_size == 4 * 1024 * 1024
