"""Behaviour against a real Azurite: settings, paging, staged blocks, failures, SAS, integrity, deletes.

What Azurite cannot prove (HNS folders, the batch API being refused, real Entra
ID tokens) is said where it is exercised.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.core.exceptions import HttpResponseError

import mlartifacts_azure._objects as objects
from mlartifacts import ArtifactStore, Part, Settings
from mlartifacts.errors import IntegrityError, NotFound, PermissionDenied, TransientError
from mlartifacts.testing.contract import random_bytes
from mlartifacts_azure import _client
from mlartifacts_azure._multipart import block_id, wire_block_id

MiB = 1024 * 1024
#: Staged blocks from 1 MiB, quick retries.
TUNED = Settings(
    multipart_threshold=MiB,
    multipart_chunksize=MiB,
    ranged_download_threshold=2 * MiB,
    ranged_download_chunksize=MiB,
    retry_backoff=0.01,
    retry_backoff_max=0.05,
    max_retries=1,
)


def blob_client(azurite: Any, store: ArtifactStore, path: str) -> Any:
    root = store.backend.root
    return azurite.admin().get_blob_client(root.container, root.name(path))


def test_single_upload_stores_content_md5(cs_env: Any, unique_uri: str) -> None:
    data = random_bytes(10_000, seed=1)
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("model.json", data)
        info = store.stat("model.json")
        props = blob_client(cs_env, store, "model.json").get_blob_properties()
    assert info.checksum is not None
    assert (info.checksum.algorithm, info.checksum.value) == ("md5", hashlib.md5(data).hexdigest())
    assert props.content_settings.content_type == "application/json"
    listed = {f.path: f.checksum for f in store.iter_files()}
    assert listed["model.json"] == info.checksum


def test_download_verified_against_content_md5(cs_env: Any, unique_uri: str, tmp_path: Path) -> None:
    from azure.storage.blob import ContentSettings

    # Digests off: the native MD5 is what is checked (with them, the SHA-256 is, first).
    with ArtifactStore(unique_uri, settings=TUNED.replace(max_retries=0, digests=False)) as store:
        store.write_bytes("w.bin", b"the real bytes")
        # The stored MD5 says other bytes: a corrupted blob (or a tampered header).
        blob_client(cs_env, store, "w.bin").set_http_headers(
            ContentSettings(content_md5=bytearray(hashlib.md5(b"other bytes").digest()))
        )
        with pytest.raises(IntegrityError, match="md5"):
            store.download_file("w.bin", str(tmp_path / "w.bin"))
    assert not (tmp_path / "w.bin").exists()


def test_staged_blocks_larger_than_three(cs_env: Any, unique_uri: str, tmp_path: Path) -> None:
    data = random_bytes(4 * MiB + 123, seed=2)
    (tmp_path / "big.bin").write_bytes(data)
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        store.log_artifact(str(tmp_path / "big.bin"), "m")
        committed, uncommitted = blob_client(cs_env, store, "m/big.bin").get_block_list("all")
        assert store.read_bytes("m/big.bin") == data
        out = store.download_file("m/big.bin", str(tmp_path / "out.bin"))  # parallel ranges
    assert Path(out).read_bytes() == data
    assert [b.size for b in committed] == [MiB] * 4 + [123]
    assert uncommitted == []
    ids = [b.id for b in committed]  # as the SDK shows them: decoded
    assert len({len(i) for i in ids}) == 1  # Azure wants every id of a blob the same length
    assert [i.rsplit("-", 1)[1] for i in ids] == ["00001", "00002", "00003", "00004", "00005"]


def test_failure_mid_upload_leaves_no_blob(
    cs_env: Any, unique_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import BlobClient

    real = BlobClient.stage_block
    calls = {"n": 0}
    lock = threading.Lock()

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n == 3:
            error = HttpResponseError(message="injected failure of block 3")
            error.status_code, error.error_code = 403, "AuthorizationFailure"
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(BlobClient, "stage_block", failing)
    (tmp_path / "f.bin").write_bytes(random_bytes(5 * MiB, seed=3))
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with pytest.raises(PermissionDenied, match=r"f\.bin"):
            store.log_artifact(str(tmp_path / "f.bin"))
        assert not store.exists("f.bin")
        assert store.list_artifacts() == []
        _, uncommitted = blob_client(cs_env, store, "f.bin").get_block_list("all")
    assert uncommitted  # staged blocks stay until Azure discards them (7 days): never visible


def test_pagination_over_1100_blobs(cs_env: Any, unique_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "LIST_PAGE_SIZE", 500)  # three pages
    with ArtifactStore(unique_uri) as store:
        container = cs_env.admin().get_container_client(store.backend.root.container)
        names = [store.backend.root.name(f"many/f{i:04d}.txt") for i in range(1100)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: container.upload_blob(n, b"x"), names))
        store.write_bytes("many/sub/deep.txt", b"y")
        store.write_bytes("manyfold.txt", b"keep")  # shares the prefix, not the folder
        children = store.list_artifacts("many")
        assert len(children) == 1101
        assert children[-1].path == "many/sub" and children[-1].is_dir
        assert sum(1 for _ in store.iter_files("many")) == 1101
        store.delete_artifacts("many")  # batches of 256, across listing pages
        assert [f.path for f in store.iter_files()] == ["manyfold.txt"]


def test_delete_falls_back_to_single_deletes_when_batches_are_refused(
    cs_env: Any, unique_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Azurite takes batches; an account that refuses them (HNS, some proxies) is
    # stood in for by a refusing delete_blobs. The single deletes are real.
    from azure.storage.blob import ContainerClient

    def refused(self: Any, *blobs: Any, **kwargs: Any) -> Any:
        error = HttpResponseError(message="The requested operation is not supported")
        error.status_code, error.error_code = 501, "NotImplemented"
        raise error

    with ArtifactStore(unique_uri) as store:
        for i in range(5):
            store.write_bytes(f"d/{i}.txt", b"x")
        store.write_bytes("d2/keep.txt", b"k")
        monkeypatch.setattr(ContainerClient, "delete_blobs", refused)
        store.delete_artifacts("d")
        assert [f.path for f in store.iter_files()] == ["d2/keep.txt"]


def test_directory_markers_are_ignored_and_deleted(cs_env: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        root = store.backend.root
        container = cs_env.admin().get_container_client(root.container)
        store.write_bytes("tree/a.txt", b"a")
        container.upload_blob(root.name("tree/empty/"), b"")  # a console's folder marker
        # An ADLS Gen2 folder as the Blob API shows it (Azurite has no hierarchical namespace).
        container.upload_blob(root.name("tree/lake"), b"", metadata={"hdi_isfolder": "true"})
        container.upload_blob(root.name("tree/lake/b.txt"), b"b")
        assert [(e.path, e.is_dir) for e in store.list_artifacts("tree")] == [
            ("tree/a.txt", False),
            ("tree/empty", True),
            ("tree/lake", True),
        ]
        assert sorted(f.path for f in store.iter_files("tree")) == ["tree/a.txt", "tree/lake/b.txt"]
        assert store.stat("tree/lake").is_dir
        store.delete_artifacts("tree")
        assert list(container.list_blobs(name_starts_with=root.name("tree"))) == []


def test_missing_container(cs_env: Any, tmp_path: Path) -> None:
    uri = cs_env.uri("x", container=f"gone{uuid.uuid4().hex[:8]}")
    with ArtifactStore(uri, settings=TUNED.replace(max_retries=0)) as store:
        with pytest.raises(NotFound, match=r"container 'gone[0-9a-f]+' does not exist"):
            store.write_bytes("a.txt", b"a")
        with pytest.raises(NotFound, match="does not exist"):
            store.list_artifacts()
        (tmp_path / "f").write_bytes(b"f")
        with pytest.raises(NotFound, match="devstoreaccount1"):
            store.log_artifact(str(tmp_path / "f"))


def test_wrong_account_key(key_env: Any, clean_env: pytest.MonkeyPatch) -> None:
    wrong = base64.b64encode(b"not the key of this account").decode()
    clean_env.setenv("AZURE_STORAGE_ACCESS_KEY", wrong)
    # Azurite answers 403 AuthorizationFailure (Azure: 403 AuthenticationFailed).
    with (
        ArtifactStore(key_env.uri("k"), settings=TUNED.replace(max_retries=0)) as store,
        pytest.raises(PermissionDenied, match="AZURE_STORAGE_ACCESS_KEY") as raised,
    ):
        store.write_bytes("a.txt", b"a")
    assert wrong not in str(raised.value)


def test_endpoint_override_and_uri_endpoint(key_env: Any, clean_env: pytest.MonkeyPatch) -> None:
    with ArtifactStore(key_env.uri("ep")) as store:
        assert store.backend.root.endpoint == key_env.endpoint
        store.write_bytes("x.txt", b"x")
        assert store.backend.root.blob(store.backend.root.name("x.txt")).url.startswith(key_env.endpoint)
    clean_env.delenv("MLARTIFACTS_AZURE_BLOB_ENDPOINT")
    with ArtifactStore(key_env.uri("ep")) as other:  # no request: where it would go
        assert other.backend.root.endpoint == "https://devstoreaccount1.blob.core.windows.net"


def test_clients_are_shared(cs_env: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as first, ArtifactStore(cs_env.uri("elsewhere")) as second:
        before = _client.cached_clients()
        assert first.backend.root.service is second.backend.root.service
        for i in range(20):
            first.write_bytes(f"f{i}", b"x")
        assert _client.cached_clients() == before


def test_pool_sized_for_the_workers(cs_env: Any, clean_env: pytest.MonkeyPatch, unique_uri: str) -> None:
    clean_env.setenv("MLARTIFACTS_MAX_WORKERS", "7")
    with ArtifactStore(unique_uri) as store:
        session = store.backend.root.service.client._config.transport.session
        assert session.get_adapter("http://127.0.0.1")._pool_maxsize == 14
        store.write_bytes("p.txt", b"p")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/devstoreaccount1"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_timeout_bounds_a_stalled_request(
    azurite: Any, clean_env: pytest.MonkeyPatch, silent_server: str
) -> None:
    clean_env.setenv("AZURE_STORAGE_ACCESS_KEY", azurite.key)
    clean_env.setenv("MLARTIFACTS_AZURE_BLOB_ENDPOINT", silent_server)
    clean_env.setenv("MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT", "1")
    started = time.monotonic()
    with (
        ArtifactStore(azurite.uri("t"), settings=TUNED.replace(max_retries=0)) as store,
        pytest.raises(TransientError, match=r"127\.0\.0\.1"),
    ):
        store.write_bytes("a.txt", b"a")
    assert time.monotonic() - started < 15  # one SDK retry of a 1 s read timeout, not 600 s


# -- SAS --------------------------------------------------------------------------------------


def test_presigned_get_is_read_only(cs_env: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("dir/report.txt", b"report")
        url = store.backend.presign("dir/report.txt", "GET", 60).url
        got = requests.get(url, timeout=10)
        assert (got.status_code, got.content) == (200, b"report")
        assert got.headers["Content-Disposition"] == 'attachment; filename="report.txt"'
        query = parse_qs(urlsplit(url).query)
        assert query["sp"] == ["r"]
        # The same SAS cannot write.
        put = requests.put(url, data=b"evil", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
        assert put.status_code == 403
        # A tampered signature (or a widened permission) is refused.
        tampered = url.replace("sp=r", "sp=rw")
        assert requests.get(tampered, timeout=10).status_code == 403
        forged = url.replace("&sig=", "&sig=A")
        assert forged != url and requests.get(forged, timeout=10).status_code == 403
        assert store.read_bytes("dir/report.txt") == b"report"


def test_presigned_get_expires(cs_env: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("e.txt", b"e")
        url = store.backend.presign("e.txt", "GET", 1).url
        time.sleep(2.5)
        assert requests.get(url, timeout=10).status_code == 403


def test_presigned_put_and_parts(cs_env: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        backend = store.backend
        whole = backend.presign("w.csv", "PUT", 60)
        assert (
            requests.put(whole.url, data=b"a,b", headers=dict(whole.headers), timeout=10).status_code == 201
        )
        assert store.read_bytes("w.csv") == b"a,b"
        # Parts sent straight to SAS URLs, completed from the URLs alone (MLflow's client sends no upload id).
        upload_id = backend.create_multipart("p.bin")
        pieces = [random_bytes(MiB, seed=7), b"tail"]
        parts = []
        for number, data in enumerate(pieces, 1):
            url = backend.presign("p.bin", "PUT", 60, upload_id, number).url
            assert parse_qs(urlsplit(url).query)["blockid"] == [wire_block_id(block_id(upload_id, number))]
            response = requests.put(url, data=data, timeout=10)
            assert response.status_code == 201
            parts.append(Part(number, response.headers.get("ETag") or "", url))
        assert not store.exists("p.bin")  # nothing visible before the commit
        backend.complete_multipart("p.bin", "", parts)
        assert store.read_bytes("p.bin") == b"".join(pieces)


def test_part_url_of_another_blob_is_refused(cs_env: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        backend = store.backend
        upload_id = backend.create_multipart("a.bin")
        url = backend.presign("other.bin", "PUT", 60, upload_id, 1).url
        with pytest.raises(ValueError, match="another blob"):
            backend.complete_multipart("a.bin", upload_id, [Part(1, "", url)])
        assert not store.exists("a.bin")
