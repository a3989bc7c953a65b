"""The plugin loads without google-cloud-storage: `import mlartifacts` and the plugin listing stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
loaded = lambda: sorted({m.split(".")[0] for m in sys.modules} & {"google", "google_crc32c"})
import mlartifacts
import mlartifacts_gcs
report = {"import": loaded()}
from mlartifacts import default_registry
registry = default_registry()
registry.records()
handle = registry.for_scheme("gs")
caps = handle.call("capabilities", root=None)
limits = handle.call("supports_multipart", root=None)
report["plugins"] = loaded()
report["capabilities"] = [caps.ranged_read, caps.presign, caps.server_side_copy, caps.list_multipart_uploads]
report["limits"] = [limits.min_part_size, limits.max_part_size, limits.max_parts]
from mlartifacts import ArtifactStore
ArtifactStore("gs://bucket/prefix")
report["used"] = loaded()
print(json.dumps(report))
"""


def test_no_sdk_until_a_gs_uri_is_used(google_env: pytest.MonkeyPatch) -> None:
    google_env.setenv("MLARTIFACTS_GCS_ANONYMOUS", "true")  # no credential lookup in the probe
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {
        "import": [],
        "plugins": [],
        "capabilities": [True, True, True, True],
        "limits": [256 * 1024, 5 * 1024**3, 1024],
        "used": ["google"],
    }


def test_listed_by_the_cli(google_env: pytest.MonkeyPatch) -> None:
    cli = Path(sys.executable).parent / "mlartifacts"
    listed = subprocess.run([str(cli), "plugins", "--json"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    row = {r["name"]: r for r in json.loads(listed.stdout)}["gcs"]
    assert (row["status"], row["distribution"], row["schemes"]) == ("loaded", "mlartifacts-gcs", ["gs"])
    assert row["capabilities"]["presign"] and row["capabilities"]["list_multipart_uploads"]
    assert row["capabilities"]["multipart"]["max_parts"] == 1024


def test_invalid_uris() -> None:
    from mlartifacts.errors import InvalidUri
    from mlartifacts_gcs import GCSConfig
    from mlartifacts_gcs._root import parse_uri

    for bad in (
        "gs://",
        "gs://Upper/x",
        "gs://127.0.0.1:4443/bucket",
        "gs://b/x?y=1",
        "gs://ab",
        "gs://bk/a//b",
    ):
        with pytest.raises(InvalidUri):
            parse_uri(bad, GCSConfig())
    root = parse_uri("gs://my-bucket/some/prefix/", GCSConfig())
    assert (root.bucket, root.prefix, root.key("f.txt"), root.rel("some/prefix/f.txt")) == (
        "my-bucket", "some/prefix", "some/prefix/f.txt", "f.txt"
    )  # fmt: skip
