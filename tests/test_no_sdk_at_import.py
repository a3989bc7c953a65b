"""In the full development environment (every plugin installed), `import mlartifacts`
and using a local URI import no backend SDK: only a URI that needs one does."""

from __future__ import annotations

import json
import sys

from .conftest import SDK_MODULES, run

PROBE = """
import json, shutil, sys, tempfile
SDKS = set({sdks!r})
loaded = lambda: sorted({{m.split('.')[0] for m in sys.modules}} & SDKS)
import mlartifacts
report = {{"import": loaded()}}
from mlartifacts import ArtifactStore, default_registry
d = tempfile.mkdtemp()
with ArtifactStore(d) as store:
    store.write_bytes("a.txt", b"a")
    store.list_artifacts()
shutil.rmtree(d)
report["local_use"] = loaded()
default_registry().records()  # every plugin module imported
report["plugins_loaded"] = loaded()
print(json.dumps(report))
"""


def test_no_sdk_until_a_uri_needs_it() -> None:
    probe = run([sys.executable, "-c", PROBE.format(sdks=SDK_MODULES)])
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {"import": [], "local_use": [], "plugins_loaded": []}
