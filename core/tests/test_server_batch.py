"""Batches of small files (beyond MLflow): tar streams both ways, raw HTTP against `mlartifacts server`."""

from __future__ import annotations

import io
import socket
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore, Settings
from mlartifacts.paths import DIGEST_PREFIX
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree

from .conftest import API, RunningServer

BATCH = API.replace("/artifacts", "/batch")


@pytest.fixture
def run(server: RunningServer) -> str:
    return f"1/{uuid.uuid4().hex}/artifacts"


def tar_of(files: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


def stored(server: RunningServer, run: str) -> dict[str, bytes]:
    """Every file below the run's directory (a temporary the server drops meanwhile is left out)."""
    root = server.destination / run  # type: ignore[operator]
    found = {}
    for path in root.rglob("*"):
        if path.name.startswith(DIGEST_PREFIX):
            continue  # the files' digests, kept beside them
        try:
            found[path.relative_to(root).as_posix()] = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
    return found


def test_server_info_offers_batches(server: RunningServer) -> None:
    info = requests.get(f"{server.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["mlartifacts"]["batch_transfers"] is True


def test_upload_batch_from_the_tar_command(server: RunningServer, run: str, tmp_path: Path) -> None:
    """What ``tar c -C dir . | curl -T - -X POST ...`` sends: './'-prefixed names, directory entries."""
    files = {"a.txt": b"alpha", "sub/b.txt": b"beta"}
    write_tree(tmp_path / "outputs", files)
    archive = subprocess.run(
        ["tar", "c", "-C", str(tmp_path / "outputs"), "."], capture_output=True, check=True
    )
    response = requests.post(f"{server.url}{BATCH}/upload/{run}", data=iter([archive.stdout]), timeout=30)
    assert (response.status_code, response.json()["files"]) == (200, 2)
    assert stored(server, run) == files


def test_upload_batch_writes_every_member(server: RunningServer, run: str) -> None:
    files = {"a.txt": b"alpha", "d/b.bin": random_bytes(70_000, seed=1), "d/e/empty": b"", "é.txt": b"e"}
    response = requests.post(f"{server.url}{BATCH}/upload/{run}", data=tar_of(files), timeout=30)
    assert (response.status_code, response.json()) == (200, {"files": 4, "bytes": 70_006})
    assert stored(server, run) == files


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "/etc/x", "a/../../b", "back\\slash", "frag#ment", ".mlartifacts-partial-x"]
)
def test_upload_batch_refuses_unsafe_names(server: RunningServer, run: str, bad: str) -> None:
    response = requests.post(f"{server.url}{BATCH}/upload/{run}", data=tar_of({bad: b"x"}), timeout=30)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not (server.destination / run).exists()  # type: ignore[operator]
    assert not (server.destination.parent / "escape.txt").exists()  # type: ignore[union-attr]


def test_upload_batch_refuses_links_and_garbage(server: RunningServer, run: str) -> None:
    response = requests.post(
        f"{server.url}{BATCH}/upload/{run}", data=tar_of({"ok.txt": b"ok"}, link="evil"), timeout=30
    )
    assert response.status_code == 400
    assert "not a regular file" in response.json()["message"]
    assert stored(server, run) == {"ok.txt": b"ok"}  # members before the bad one are whole and kept
    response = requests.post(
        f"{server.url}{BATCH}/upload/{run}/x", data=b"not a tar stream" * 100, timeout=30
    )
    assert response.status_code == 400
    assert "tar" in response.json()["message"]


def test_cut_off_batch_keeps_only_whole_files(server: RunningServer, run: str) -> None:
    body = tar_of({"whole.bin": random_bytes(20_000, seed=2), "cut.bin": random_bytes(3 << 20, seed=3)})
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = f"POST {BATCH}/upload/{run} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        s.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body[: 2 << 20])
        time.sleep(0.3)  # the server is now writing cut.bin
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(stored(server, run)) != {"whole.bin"}:
        time.sleep(0.1)  # until the server notices the cut and drops its temporary
    assert stored(server, run) == {"whole.bin": random_bytes(20_000, seed=2)}  # no partial file, no temporary


def test_cut_off_small_put_leaves_nothing(server: RunningServer, run: str) -> None:
    """A body under 1 MiB is read whole before writing: cut off, it writes nothing."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"PUT {API}/{run}/small.bin HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Length: 500000\r\n\r\n".encode()
        )
        s.sendall(random_bytes(100_000))
        time.sleep(0.3)
    time.sleep(0.3)
    assert not (server.destination / run).exists()  # type: ignore[operator]
    assert requests.get(f"{server.artifacts}/{run}/small.bin", timeout=10).status_code == 404


def test_download_batch(server: RunningServer, run: str) -> None:
    files = {"a.txt": b"alpha", "d/b.bin": random_bytes(2 << 20, seed=4), "empty": b""}
    requests.post(f"{server.url}{BATCH}/upload/{run}", data=tar_of(files), timeout=30).raise_for_status()
    response = requests.post(
        f"{server.url}{BATCH}/download/{run}", json={"paths": ["d/b.bin", "empty", "a.txt"]}, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r|") as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    assert got == files


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"paths": ["a.txt", "missing.txt"]}, 404, "RESOURCE_DOES_NOT_EXIST"),
        ({"paths": ["d"]}, 400, "INVALID_PARAMETER_VALUE"),  # a directory
        ({"paths": ["../../etc/passwd"]}, 400, "INVALID_PARAMETER_VALUE"),
        ({"paths": ["a.txt", "a.txt"]}, 400, "INVALID_PARAMETER_VALUE"),
        ({"paths": [f"f{i}" for i in range(1001)]}, 400, "INVALID_PARAMETER_VALUE"),
        ({"files": ["a.txt"]}, 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_download_batch_refusals(
    server: RunningServer, run: str, body: object, status: int, code: str
) -> None:
    requests.post(
        f"{server.url}{BATCH}/upload/{run}", data=tar_of({"a.txt": b"a", "d/x": b"x"}), timeout=30
    ).raise_for_status()
    response = requests.post(f"{server.url}{BATCH}/download/{run}", json=body, timeout=30)
    assert response.status_code == status
    assert response.json()["error_code"] == code


def test_client_moves_trees_in_batches(server: RunningServer, run: str, tmp_path: Path) -> None:
    files = {f"d{i % 4}/f{i}.bin": random_bytes(500 + i, seed=i) for i in range(40)}
    files["big.bin"] = random_bytes(3 << 20, seed=9)  # above the batch size: a PUT of its own
    write_tree(tmp_path / "src", files)
    with ArtifactStore(f"{server.artifacts}/{run}", settings=Settings(max_workers=4)) as store:
        store.log_artifacts(str(tmp_path / "src"))
        out = Path(store.download_artifacts("", str(tmp_path / "dst")))
    assert stored(server, run) == files
    assert read_tree(out) == files
    log = server.log()
    assert log.count(f"POST {BATCH}/upload/{run}") == 4  # 40 files, 4 workers
    assert log.count(f"POST {BATCH}/download/{run}") == 4
    assert log.count(f"PUT {API}/{run}/big.bin") == 1
    assert f"PUT {API}/{run}/d0/" not in log
