"""The README's main command, `scripts/serve`, serves ./mlartifacts of where it is run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import requests

from mlartifacts.testing.servers import ServerProcess, free_port, http_ok, wait_for

from .conftest import REPO


def test_scripts_serve(tmp_path: Path) -> None:
    port = free_port()
    with ServerProcess(
        [str(REPO / "scripts" / "serve"), "--port", str(port)], tmp_path / "serve.log", cwd=tmp_path,
        env={**os.environ}, stop_signal=signal.SIGINT,
    ) as proc:  # fmt: skip
        wait_for(http_ok(f"http://127.0.0.1:{port}/health"), 120, proc=proc, what="scripts/serve")
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/model.bin"
        assert requests.put(url, data=b"weights", timeout=10).status_code == 200
        assert requests.get(url, timeout=10).content == b"weights"
    assert (tmp_path / "mlartifacts" / "0" / "run" / "artifacts" / "model.bin").read_bytes() == b"weights"
