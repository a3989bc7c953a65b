"""What the server reuses from a listing a moment ago: sizes for batch downloads, walks for pages.

The destination is the in-memory backend with batch transfers (as S3 over obstore
offers them), served in-process, so the test sees which backend calls each request
makes: a batch download of files just listed makes no stat per member, and page N
of a recursive listing walks nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mlartifacts import ArtifactStore, PluginRegistry, Settings
from mlartifacts._tar import read_members, reader
from mlartifacts.errors import IntegrityError
from mlartifacts.server import ServerConfig, create_app
from mlartifacts.testing import MemoryBackend
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree
from mlartifacts.transfer._digest import sha256_hex

from .conftest import API, serve_app

BATCH = API.replace("/artifacts", "/batch")


@dataclass
class Service:
    url: str
    backend: MemoryBackend

    def put(self, path: str, data: bytes) -> None:
        requests.put(f"{self.url}{API}/{path}", data=data, timeout=30).raise_for_status()

    def batch(self, run: str, names: list[str]) -> requests.Response:
        return requests.post(f"{self.url}{BATCH}/download/{run}", json={"paths": names}, timeout=30)


@pytest.fixture
def service(client_env: pytest.MonkeyPatch) -> Iterator[Service]:
    backend = MemoryBackend(batch=True)
    registry = PluginRegistry(autoload=False)
    registry.register(backend, "memory")
    app = create_app(ServerConfig(artifacts_destination="memory://bucket/dest"), registry=registry)
    with serve_app(app) as url:
        yield Service(url, backend)


def members(response: requests.Response) -> dict[str, tuple[bytes, str | None]]:
    assert response.status_code == 200, response.text
    return {
        name: (data.read(), digest)
        for name, _, data, digest in read_members(reader(iter([response.content])))
    }


def listed(service: Service, run: str) -> None:
    answer = requests.get(
        f"{service.url}{API}", params={"path": run, "recursive": "true", "details": "true"}, timeout=30
    )
    answer.raise_for_status()


def test_batch_of_listed_files_reads_through_the_destination_batch(service: Service) -> None:
    """Listed small members: one download_batch, no stat or read per member; digests of the bytes."""
    run = uuid.uuid4().hex
    files = {f"d{i % 3}/f{i}.bin": random_bytes(1000 + i, seed=i) for i in range(30)}
    for name, data in files.items():
        service.put(f"{run}/{name}", data)
    listed(service, run)
    stats, reads, batches = (service.backend.count(h) for h in ("stat", "read", "download_batch"))
    got = members(service.batch(run, sorted(files)))
    assert {name: data for name, (data, _) in got.items()} == files
    assert all(digest == sha256_hex(files[name]) for name, (_, digest) in got.items())
    assert service.backend.count("stat") == stats
    assert service.backend.count("read") == reads
    assert service.backend.count("download_batch") == batches + 1


def test_unlisted_and_large_members_are_stated_and_streamed(service: Service) -> None:
    run = uuid.uuid4().hex
    small, large = b"small file", random_bytes(3 << 20, seed=3)
    service.put(f"{run}/large.bin", large)
    listed(service, run)
    service.put(f"{run}/small.txt", small)  # written after the listing: unknown to it
    batches = service.backend.count("download_batch")
    got = members(service.batch(run, ["small.txt", "large.bin"]))
    assert got["small.txt"][0] == small and got["large.bin"][0] == large
    assert service.backend.count("download_batch") == batches  # neither went through a group


def test_a_file_changed_since_the_listing_is_sent_as_stored(service: Service, tmp_path: Path) -> None:
    """A member whose bytes no longer match the listed digest goes the stat-and-stream way.

    Here it was corrupted at rest (its recorded SHA-256 unchanged): the client, which
    checks each member against the digest sent, refuses it.
    """
    run = uuid.uuid4().hex
    files = {f"f{i}.bin": random_bytes(2000 + i, seed=i) for i in range(4)}
    for name, data in files.items():
        service.put(f"{run}/{name}", data)
    listed(service, run)
    service.backend.corrupt_stored("bucket", f"dest/{run}/f2.bin")
    got = members(service.batch(run, sorted(files)))
    assert got["f2.bin"][1] == sha256_hex(files["f2.bin"])  # the stored digest, not of the bytes sent
    assert got["f2.bin"][0] != files["f2.bin"]
    with (
        ArtifactStore(f"{service.url}{API}/{run}", settings=Settings(max_retries=1)) as store,
        pytest.raises(IntegrityError, match=r"f2\.bin"),
    ):
        store.download_artifacts("", str(tmp_path / "dst"))


def test_a_member_deleted_since_the_listing_is_a_404(service: Service) -> None:
    run = uuid.uuid4().hex
    service.put(f"{run}/a.txt", b"a")
    service.put(f"{run}/b.txt", b"b")
    listed(service, run)
    service.backend.delete(service.backend.resolve_uri(f"memory://bucket/dest/{run}"), "b.txt")
    answer = service.batch(run, ["a.txt", "b.txt"])
    assert answer.status_code == 404
    assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "b.txt" in answer.json()["message"]


def test_a_write_through_the_server_is_not_served_from_an_old_listing(service: Service) -> None:
    run = uuid.uuid4().hex
    service.put(f"{run}/a.txt", b"old")
    listed(service, run)
    service.put(f"{run}/a.txt", b"replaced, longer")
    assert members(service.batch(run, ["a.txt"]))["a.txt"][0] == b"replaced, longer"


def test_client_tree_round_trip_through_a_batching_destination(service: Service, tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    files = {f"d{i % 4}/f{i}.bin": random_bytes(300 + i, seed=i) for i in range(60)}
    files["big.bin"] = random_bytes(2 << 20, seed=1)
    write_tree(tmp_path / "src", files)
    with ArtifactStore(f"{service.url}{API}/{run}", settings=Settings(max_workers=4)) as store:
        store.log_artifacts(str(tmp_path / "src"))
        stats = service.backend.count("stat")
        out = Path(store.download_artifacts("", str(tmp_path / "dst")))
    assert read_tree(out) == files
    assert service.backend.count("stat") - stats <= 1  # the large file's own GET, not one per member


def test_later_pages_of_a_recursive_listing_walk_nothing(service: Service) -> None:
    """Page N of a paged recursive listing comes from the walk made for page 1."""
    run = uuid.uuid4().hex
    names = sorted(f"d{i % 5}/f{i:03}.txt" for i in range(50))
    for name in names:
        service.put(f"{run}/{name}", name.encode())
    walks = service.backend.count("list")
    params = {"path": run, "recursive": "true", "max_results": "7"}
    seen: list[str] = []
    while True:
        body = requests.get(f"{service.url}{API}", params=params, timeout=30).json()
        seen += [entry["path"] for entry in body["files"]]
        if "next_page_token" not in body:
            break
        params["page_token"] = body["next_page_token"]
    assert seen == names
    assert service.backend.count("list") - walks == 1  # one walk for 8 pages


def test_pages_after_a_write_show_the_tree_as_it_is(service: Service) -> None:
    run = uuid.uuid4().hex
    for name in ("a", "b", "c", "d"):
        service.put(f"{run}/{name}", b"x")
    params = {"path": run, "recursive": "true", "max_results": "2"}
    first = requests.get(f"{service.url}{API}", params=params, timeout=30).json()
    assert [e["path"] for e in first["files"]] == ["a", "b"]
    service.put(f"{run}/bb", b"new")
    second = requests.get(
        f"{service.url}{API}", params={**params, "page_token": first["next_page_token"]}, timeout=30
    ).json()
    assert [e["path"] for e in second["files"]] == ["bb", "c"]


def test_a_forged_page_token_still_pages_correctly(service: Service) -> None:
    """A page token is only a position: one never issued gives the page after it, as before."""
    import base64

    run = uuid.uuid4().hex
    for name in ("a", "b", "c"):
        service.put(f"{run}/{name}", b"x")
    token = base64.urlsafe_b64encode(b"a").decode()
    body = requests.get(
        f"{service.url}{API}",
        params={"path": run, "recursive": "true", "max_results": "5", "page_token": token},
        timeout=30,
    ).json()
    assert [e["path"] for e in body["files"]] == ["b", "c"]


def test_listings_are_bounded_expire_and_forget() -> None:
    from mlartifacts import FileInfo
    from mlartifacts.server._listings import Listings

    kept = Listings(max_files=3)
    kept.remember([FileInfo(f"d/f{i}", False, i) for i in range(5)] + [FileInfo("d", True)])
    assert [kept.file(f"d/f{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert kept.file("d") is None  # directories are not kept
    kept.forget("d", tree=True)
    assert all(kept.file(f"d/f{i}") is None for i in range(5))
    expired = Listings(ttl=0.0)
    expired.remember([FileInfo("a", False, 1)])
    assert expired.file("a") is None
    walks = Listings()
    walks.keep_walk(("p", "x"), [FileInfo("p/y", False, 1)], 0)
    assert walks.take_walk(("p", "x")) is not None
    assert walks.take_walk(("p", "x")) is None  # taken once; the next page keeps it again
