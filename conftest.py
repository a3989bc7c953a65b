"""Session-wide test setup for every package: transfer journals stay in a temporary directory."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Resumable transfers journal into the user's cache by default; tests (and the servers and
# CLIs they start, which inherit the environment) must never write outside the repo or /tmp.
if not os.environ.get("MLARTIFACTS_STATE_DIR"):
    _STATE = tempfile.mkdtemp(prefix="mlartifacts-test-state-")
    os.environ["MLARTIFACTS_STATE_DIR"] = _STATE
    atexit.register(shutil.rmtree, _STATE, ignore_errors=True)
