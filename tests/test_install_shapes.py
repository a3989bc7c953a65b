"""What each install shape pulls in: the core alone brings no storage SDK.

Each case builds a fresh virtual environment with `uv pip install './core[extras]'`
from this checkout (workspace sources), as a user of a checkout would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import REPO, SDK_DISTRIBUTIONS, SDK_MODULES, run, uv

pytestmark = pytest.mark.slow

#: extras -> (distributions that must be present, SDK distribution prefixes allowed)
SHAPES: dict[str, tuple[set[str], tuple[str, ...]]] = {
    # prometheus-client (pure Python, no dependencies) serves `server --expose-prometheus`.
    "": ({"mlartifacts", "mlartifacts-nfs", "pluggy", "tqdm", "prometheus-client"}, ()),
    # boto3 with botocore and s3transfer, and obstore (the small-file batches).
    "s3": (
        {"mlartifacts", "mlartifacts-nfs", "mlartifacts-s3", "boto3", "botocore", "s3transfer", "obstore"},
        ("boto3", "botocore", "s3transfer", "obstore"),
    ),
    # paramiko and its own stack (cryptography, bcrypt, pynacl); no other storage SDK.
    "sftp": ({"mlartifacts", "mlartifacts-nfs", "mlartifacts-sftp", "paramiko"}, ("paramiko",)),
    # The standard library's ftplib: no SDK at all.
    "ftp": ({"mlartifacts", "mlartifacts-nfs", "mlartifacts-ftp", "pluggy", "tqdm"}, ()),
    # google-cloud-storage's stack (google-auth, google-api-core, google-crc32c...), nothing else.
    "gcs": (
        {
            "mlartifacts",
            "mlartifacts-nfs",
            "mlartifacts-gcs",
            "google-cloud-storage",
            "google-auth",
            "google-crc32c",
        },
        ("google-",),
    ),
    # pyarrow (its HadoopFileSystem), and nothing else third-party.
    "hdfs": ({"mlartifacts", "mlartifacts-nfs", "mlartifacts-hdfs", "pyarrow"}, ("pyarrow",)),
    # Extras combine: exactly those backends and their SDKs.
    "s3,sftp": (
        {"mlartifacts", "mlartifacts-nfs", "mlartifacts-s3", "mlartifacts-sftp", "boto3", "paramiko"},
        ("boto3", "botocore", "s3transfer", "obstore", "paramiko"),
    ),
    "s3,gcs": (
        {
            "mlartifacts",
            "mlartifacts-nfs",
            "mlartifacts-s3",
            "mlartifacts-gcs",
            "boto3",
            "google-cloud-storage",
        },
        ("boto3", "botocore", "s3transfer", "obstore", "google-"),
    ),
    # azure-storage-blob and azure-identity with their stack (azure-core, msal, cryptography...).
    "azure": (
        {
            "mlartifacts",
            "mlartifacts-nfs",
            "mlartifacts-azure",
            "azure-storage-blob",
            "azure-identity",
            "azure-core",
        },
        ("azure-storage-blob", "azure-identity", "azure-core"),
    ),
    "s3,azure": (
        {
            "mlartifacts",
            "mlartifacts-s3",
            "mlartifacts-azure",
            "boto3",
            "azure-storage-blob",
            "azure-identity",
        },
        ("boto3", "botocore", "s3transfer", "obstore", "azure-storage-blob", "azure-identity", "azure-core"),
    ),
}

PROBE = """
import json, sys, tempfile, os, shutil
import mlartifacts
at_import = sorted({m.split('.')[0] for m in sys.modules} & set(SDKS))
from mlartifacts import ArtifactStore
d = tempfile.mkdtemp()
with ArtifactStore(os.path.join(d, 'store')) as store:
    store.write_bytes('model/weights.bin', b'w' * 1000)
    out = store.download_artifacts('model', os.path.join(d, 'dl'))
    ok = open(os.path.join(out, 'weights.bin'), 'rb').read() == b'w' * 1000
after_use = sorted({m.split('.')[0] for m in sys.modules} & set(SDKS))
shutil.rmtree(d)
print(json.dumps({"at_import": at_import, "after_use": after_use, "ok": ok, "plugin": store.plugin}))
"""


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = {}
    for extras in SHAPES:
        venv = tmp_path_factory.mktemp(f"venv-{extras or 'core'}")
        target = f"./core[{extras}]" if extras else "./core"
        created = run([uv(), "venv", "--quiet", str(venv)])
        assert created.returncode == 0, created.stderr
        env = {**os.environ, "VIRTUAL_ENV": str(venv)}
        env.pop("UV_PROJECT_ENVIRONMENT", None)
        installed = run([uv(), "pip", "install", "--quiet", target], cwd=REPO, env=env)
        assert installed.returncode == 0, installed.stderr
        made[extras] = venv
    return made


def installed(venv: Path) -> set[str]:
    listed = run([uv(), "pip", "list", "--format", "json"], env={**os.environ, "VIRTUAL_ENV": str(venv)})
    return {d["name"].lower() for d in json.loads(listed.stdout)}


@pytest.mark.parametrize("extras", list(SHAPES))
def test_dependency_closure(venvs: dict[str, Path], extras: str) -> None:
    names = installed(venvs[extras])
    required, allowed = SHAPES[extras]
    assert required <= names
    sdks = {n for n in names if n.startswith(SDK_DISTRIBUTIONS) and not n.startswith(allowed)}
    assert sdks == set(), f"mlartifacts[{extras}] pulled in {sorted(sdks)}"


@pytest.mark.parametrize("extras", list(SHAPES))
def test_core_alone_stores_on_local_disk_without_sdks(venvs: dict[str, Path], extras: str) -> None:
    python = venvs[extras] / "bin" / "python"
    probe = run([str(python), "-c", f"SDKS = {SDK_MODULES!r}\n{PROBE}"])
    assert probe.returncode == 0, probe.stderr
    result = json.loads(probe.stdout)
    assert result == {"at_import": [], "after_use": [], "ok": True, "plugin": "nfs"}
    cli = run([str(venvs[extras] / "bin" / "mlartifacts"), "plugins", "--json"])
    assert cli.returncode == 0, cli.stderr
    assert {row["name"]: row["status"] for row in json.loads(cli.stdout)}["nfs"] == "loaded"


def test_ftp_adds_only_its_plugin(venvs: dict[str, Path]) -> None:
    # ftplib is the standard library's: mlartifacts[ftp] brings no third-party distribution.
    assert installed(venvs["ftp"]) - installed(venvs[""]) == {"mlartifacts-ftp"}


def test_hdfs_adds_only_its_plugin_and_pyarrow(venvs: dict[str, Path]) -> None:
    assert installed(venvs["hdfs"]) - installed(venvs[""]) == {"mlartifacts-hdfs", "pyarrow"}


def test_combined_extras_are_the_union_of_their_parts(venvs: dict[str, Path]) -> None:
    assert installed(venvs["s3,sftp"]) == installed(venvs["s3"]) | installed(venvs["sftp"])
    assert installed(venvs["s3,gcs"]) == installed(venvs["s3"]) | installed(venvs["gcs"])
    assert installed(venvs["s3,azure"]) == installed(venvs["s3"]) | installed(venvs["azure"])
