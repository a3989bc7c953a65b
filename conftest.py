"""Session-wide test setup for every package: transfer journals stay in a temporary directory."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import mlartifacts.transfer._journal as _journal

# Resumable transfers journal into the user's cache by default; tests (and the servers and
# CLIs they start, which inherit the environment) must never write outside the repo or /tmp.
_STATE = tempfile.mkdtemp(prefix="mlartifacts-test-state-")
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)
os.environ.setdefault("MLARTIFACTS_STATE_DIR", _STATE)


def _test_state_dir(environ: object = None) -> str:
    # Many fixtures clear MLARTIFACTS_* (and some point HOME into tmp_path) to shield the
    # tests from a developer's settings: journals still go to this session's directory.
    return os.environ.get("MLARTIFACTS_STATE_DIR") or _STATE


vars(_journal)["default_state_dir"] = _test_state_dir
