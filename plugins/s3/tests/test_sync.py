"""``sync`` and ``verify`` with S3 (SeaweedFS) on one side: local -> S3 -> the service -> local, S3 -> S3.

The service is ``mlartifacts server`` on local disk, in a subprocess. botocore's
request log shows what a re-run over an unchanged tree costs: listings only.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

from mlartifacts import ArtifactStore, Settings
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree
from mlartifacts.testing.servers import logged_requests, start_artifacts_server, wait_for

MiB = 1024 * 1024
API = "/api/2.0/mlflow-artifacts/artifacts"
TREE = {
    "model.bin": random_bytes(6 * MiB + 5, seed=7),  # past the multipart threshold set below
    "conf/params.json": b'{"lr": 0.1}',
    "data/0.csv": b"a,b\n1,2\n",
    "empty": b"",
}


def log_mark(url: str, log: Path) -> int:
    """Mark the service's access log with a request; the index just past it, once written."""
    marker = f"mark-{uuid.uuid4().hex}"
    requests.get(f"{url}{API}?path={marker}", timeout=10)
    wait_for(lambda: any(marker in line for line in logged_requests(log)), 10, what="the access log")
    return next(i for i, line in enumerate(logged_requests(log)) if marker in line) + 1


@pytest.fixture
def settings(s3_env: Any, aws_env: pytest.MonkeyPatch) -> Settings:
    aws_env.setenv("MLARTIFACTS_MULTIPART_THRESHOLD", str(5 * MiB))
    aws_env.setenv("MLARTIFACTS_MULTIPART_CHUNKSIZE", str(5 * MiB))
    return Settings.from_env()


def test_sync_local_s3_service_local(
    unique_uri: str, settings: Settings, tmp_path: Path, record: Callable[..., Any]
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    process, url = start_artifacts_server(str(tmp_path / "served"), tmp_path / "server.log", dict(os.environ))
    try:
        service = f"{url}{API}/sync"
        back = tmp_path / "back"
        with (
            ArtifactStore(unique_uri, settings=settings) as s3,
            ArtifactStore(service, settings=settings) as svc,
        ):
            steps: list[Callable[..., Any]] = [
                lambda **kw: s3.sync_from(src, **kw),
                lambda **kw: s3.sync(svc, **kw),
                lambda **kw: svc.sync(back, **kw),
            ]
            for step in steps:
                assert sorted(a.path for a in step().copied) == sorted(TREE)
            assert read_tree(back) == TREE
            assert s3.verify().ok and svc.verify(against=src).ok

            with record(s3.backend.root.client) as sent:
                start = log_mark(url, process.log)
                for step in steps:
                    result = step()
                    assert (result.copied, result.skipped) == ([], len(TREE))
            assert {s.operation for s in sent} == {"ListObjectsV2"}
            lines = logged_requests(process.log)[start : log_mark(url, process.log) - 1]
            # The service only listed: GET of the artifacts collection, never of a file.
            assert lines and all(line.startswith(f"GET {API}?") for line in lines), lines

            (src / "conf/params.json").write_bytes(b'{"lr": 0.25}')
            (src / "empty").unlink()
            for step in steps:
                result = step(delete=True)
                assert [a.path for a in result.copied] == ["conf/params.json"]
                assert [a.path for a in result.deleted] == ["empty"]
            assert read_tree(back) == read_tree(src)
    finally:
        process.stop()


def test_sync_s3_to_s3_and_dry_run(unique_uri: str, settings: Settings, tmp_path: Path) -> None:
    other = f"{unique_uri.rsplit('/', 1)[0]}/{uuid.uuid4().hex}"
    with ArtifactStore(unique_uri, settings=settings) as a, ArtifactStore(other, settings=settings) as b:
        a.sync_from(write_tree(tmp_path / "src", TREE))
        plan = a.sync(b, dry_run=True)
        assert sorted(x.path for x in plan.copied) == sorted(TREE)
        assert list(b.iter_files()) == []
        assert len(a.sync(b).copied) == len(TREE)
        assert {i.path: b.read_bytes(i.path) for i in b.iter_files()} == TREE
        assert a.sync(b).skipped == len(TREE)
        b.write_bytes("data/0.csv", b"a,b\n9,9,9\n")
        b.write_bytes("stray", b"s")
        result = a.sync(b, delete=True)
        # S3 listings carry sizes, not digests (those need a HEAD per object): sizes decide.
        assert [(x.path, x.reason) for x in result.copied] == [("data/0.csv", "size")]
        assert [x.path for x in result.deleted] == ["stray"]
        assert b.read_bytes("data/0.csv") == TREE["data/0.csv"]
