"""The plugin loads without the SDK; azure-identity comes only when no key is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
SDK = ("azure",)
loaded = lambda: sorted({m for m in sys.modules if m.startswith(("azure.storage", "azure.identity"))
                         and m.count(".") == 1})
import mlartifacts
import mlartifacts_azure
report = {"import": loaded()}
from mlartifacts import default_registry
registry = default_registry()
registry.records()
handle = registry.for_scheme("wasbs")
caps = handle.call("capabilities", root=None)
limits = handle.call("supports_multipart", root=None)
report["plugins"] = loaded()
report["capabilities"] = [caps.ranged_read, caps.presign, caps.server_side_copy, caps.list_multipart_uploads]
report["limits"] = [limits.min_part_size, limits.max_part_size, limits.max_parts]
from mlartifacts import ArtifactStore
ArtifactStore("wasbs://box@acct.blob.core.windows.net/prefix")
report["key"] = loaded()
if sys.argv[1] == "chain":
    import os
    del os.environ["AZURE_STORAGE_ACCESS_KEY"]
    ArtifactStore("abfss://box@acct.dfs.core.windows.net/prefix")
    report["chain"] = loaded()
print(json.dumps(report))
"""


def run(mode: str) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_STORAGE_")}
    env["AZURE_STORAGE_ACCESS_KEY"] = "a2V5"
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=False, env=env
    )
    assert probe.returncode == 0, probe.stderr
    report: dict[str, list[str]] = json.loads(probe.stdout)
    return report


def test_no_sdk_until_an_azure_uri_is_used() -> None:
    assert run("key") == {
        "import": [],
        "plugins": [],
        "capabilities": [True, True, False, False],
        "limits": [1024**2, 4000 * 1024**2, 50_000],
        "key": ["azure.storage"],  # a key: no azure-identity
    }


def test_identity_only_without_connection_string_or_key() -> None:
    assert run("chain")["chain"] == ["azure.identity", "azure.storage"]


def test_listed_by_the_cli(clean_env: pytest.MonkeyPatch) -> None:
    cli = Path(sys.executable).parent / "mlartifacts"
    listed = subprocess.run([str(cli), "plugins", "--json"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    row = {r["name"]: r for r in json.loads(listed.stdout)}["azure"]
    assert (row["status"], row["distribution"]) == ("loaded", "mlartifacts-azure")
    assert row["schemes"] == ["wasbs", "wasb", "abfss", "abfs"]
    assert row["capabilities"]["presign"] and row["capabilities"]["multipart"]["max_parts"] == 50_000
