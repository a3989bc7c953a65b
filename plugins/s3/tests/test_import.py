"""The plugin loads without boto3: `import mlartifacts` and `mlartifacts plugins` stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
SDK = ("boto3", "botocore", "s3transfer")
loaded = lambda: sorted({m.split(".")[0] for m in sys.modules} & set(SDK))
import mlartifacts
import mlartifacts_s3
report = {"import": loaded()}
from mlartifacts import default_registry
registry = default_registry()
registry.records()
handle = registry.for_scheme("s3")
caps = handle.call("capabilities", root=None)
limits = handle.call("supports_multipart", root=None)
report["plugins"] = loaded()
report["capabilities"] = [caps.ranged_read, caps.presign, caps.server_side_copy, caps.list_multipart_uploads]
report["limits"] = [limits.min_part_size, limits.max_part_size, limits.max_parts]
from mlartifacts import ArtifactStore
ArtifactStore("s3://bucket/prefix")
report["used"] = loaded()
print(json.dumps(report))
"""


def test_no_boto3_until_an_s3_uri_is_used(aws_env: pytest.MonkeyPatch) -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {
        "import": [],
        "plugins": [],
        "capabilities": [True, True, True, True],
        "limits": [5 * 1024**2, 5 * 1024**3, 10_000],
        "used": ["boto3", "botocore", "s3transfer"],
    }


def test_listed_by_the_cli(aws_env: pytest.MonkeyPatch) -> None:
    cli = Path(sys.executable).parent / "mlartifacts"
    listed = subprocess.run([str(cli), "plugins", "--json"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    row = {r["name"]: r for r in json.loads(listed.stdout)}["s3"]
    assert (row["status"], row["distribution"], row["schemes"]) == ("loaded", "mlartifacts-s3", ["s3"])
    assert row["capabilities"]["presign"] and row["capabilities"]["list_multipart_uploads"]
    assert row["capabilities"]["multipart"]["max_parts"] == 10_000
