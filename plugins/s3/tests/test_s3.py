"""S3 behaviour beyond the contract suite, against SeaweedFS: paging, multipart, presigned URLs,
credentials, missing buckets, failures mid-upload, shared clients, copies, directory markers."""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ConnectionClosedError

from mlartifacts import ArtifactStore, Part, Settings
from mlartifacts.errors import NotFound, OperationTimeout, TransientError, Unauthenticated
from mlartifacts.testing.contract import random_bytes, write_tree
from mlartifacts_s3 import S3Root
from mlartifacts_s3._client import cached_clients
from mlartifacts_s3._objects import _file_info, copy_object

MiB = 1024 * 1024
TUNED = Settings(
    multipart_threshold=5 * MiB,
    multipart_chunksize=5 * MiB,
    retry_backoff=0.01,
    retry_backoff_max=0.05,
    max_retries=2,
)
Recorder = Callable[..., Any]


def key_count(sent: Any) -> int:
    return int(sent.body.count(b"<Key>")) if sent.body else 0


def test_listing_and_deleting_page_past_1000_keys(unique_uri: str, tmp_path: Path, record: Recorder) -> None:
    files = {f"many/d{i % 3}/f{i:04}.txt": b"x" for i in range(1100)}
    files |= {"many.txt": b"sibling file", "many-more/keep.txt": b"sibling dir"}
    write_tree(tmp_path / "src", files)
    with ArtifactStore(unique_uri) as store:
        store.log_artifacts(str(tmp_path / "src"))
        client = store.backend.root.client
        with record(client, "ListObjectsV2") as listed:
            assert len(list(store.iter_files("many"))) == 1100
        assert len(listed) == 2  # 1,000 keys per page
        assert [e.path for e in store.list_artifacts("many")] == ["many/d0", "many/d1", "many/d2"]
        assert len(store.list_artifacts("many/d0")) == 367
        with record(client, "DeleteObjects") as deleted:
            store.delete_artifacts("many")
        assert sorted(key_count(s) for s in deleted) == [100, 1000]
        assert sorted(f.path for f in store.iter_files()) == ["many-more/keep.txt", "many.txt"]


def test_listing_one_page_of_direct_children_past_1000(unique_uri: str, s3_env: Any) -> None:
    admin, root = s3_env.client(), unique_uri.split("/", 3)[3]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: admin.put_object(Bucket=s3_env.bucket, Key=f"{root}/flat/{i:04}", Body=b""),
                range(1100),
            )
        )
    with ArtifactStore(unique_uri) as store:
        entries = store.list_artifacts("flat")
        assert len(entries) == 1100 and all(e.file_size == 0 and not e.is_dir for e in entries)


def test_multipart_upload(unique_uri: str, tmp_path: Path, record: Recorder, s3_env: Any) -> None:
    data = random_bytes(12 * MiB + 1, seed=1)
    (tmp_path / "model.bin").write_bytes(data)
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with record(store.backend.root.client) as sent:
            store.log_artifact(str(tmp_path / "model.bin"), "model")
        parts = [s for s in sent if s.operation == "UploadPart"]
        assert sorted(int(parse_qs(urlsplit(s.url).query)["partNumber"][0]) for s in parts) == [1, 2, 3]
        info = store.stat("model/model.bin")
        assert info.file_size == len(data) and info.etag is not None and info.etag.endswith("-3")
        assert info.checksum is None  # a multipart ETag is not an MD5 of the content
        assert list(store.backend.list_multipart_uploads("")) == []
        out = store.download_artifacts("model/model.bin", str(tmp_path / "dst"))
        assert hashlib.sha256(Path(out).read_bytes()).digest() == hashlib.sha256(data).digest()


def test_stat_has_md5_for_single_part_objects(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("f.txt", b"hello")
        info = store.stat("f.txt")
    assert info.checksum is not None
    assert (info.checksum.algorithm, info.checksum.value) == ("md5", hashlib.md5(b"hello").hexdigest())
    assert info.modified is not None and abs(info.modified - time.time()) < 300


@pytest.mark.parametrize(
    ("extra", "has_md5"),
    [
        ({}, True),
        ({"ServerSideEncryption": "AES256"}, True),  # SSE-S3 keeps the MD5 ETag
        ({"ServerSideEncryption": "aws:kms"}, False),
        ({"ServerSideEncryption": "aws:kms:dsse"}, False),
        ({"SSECustomerAlgorithm": "AES256"}, False),
    ],
)
def test_md5_only_when_the_etag_is_one(extra: dict[str, str], has_md5: bool) -> None:
    response = {"ContentLength": 5, "ETag": '"5d41402abc4b2a76b9719d911017c592"', **extra}
    assert (_file_info("f", response).checksum is not None) == has_md5


def test_presigned_get_and_put_with_plain_http(unique_uri: str, s3_env: Any) -> None:
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("reports/summary 1.txt", b"the summary")
        url = store.presign("reports/summary 1.txt", expires_in=60)
        with urllib.request.urlopen(url.url, timeout=30) as response:
            assert response.read() == b"the summary"
            assert response.headers["Content-Disposition"] == 'attachment; filename="summary 1.txt"'
        assert url.headers == {} and url.expires_in == 60
        put = store.presign("uploads/data.json", "PUT")
        request = urllib.request.Request(put.url, b'{"a": 1}', dict(put.headers), method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        assert store.read_bytes("uploads/data.json") == b'{"a": 1}'
        key = store.backend.root.key("uploads/data.json")
        assert s3_env.client().head_object(Bucket=s3_env.bucket, Key=key)["ContentType"] == "application/json"


def test_presigned_multipart_parts_then_complete(unique_uri: str) -> None:
    """The proxied-multipart flow without the server: parts go to presigned URLs over plain HTTP."""
    first, last = random_bytes(5 * MiB, seed=2), b"the tail"
    with ArtifactStore(unique_uri) as store:
        backend = store.backend
        started = time.time()
        upload_id = backend.create_multipart("big/weights.bin")
        pending = list(backend.list_multipart_uploads("big"))
        assert [(p.path, p.upload_id) for p in pending] == [("big/weights.bin", upload_id)]
        assert pending[0].initiated is not None and abs(pending[0].initiated - started) < 300
        parts = []
        for number, data in ((2, last), (1, first)):
            url = backend.presign("big/weights.bin", "PUT", 300, upload_id=upload_id, part_number=number)
            assert parse_qs(urlsplit(url.url).query)["partNumber"] == [str(number)]
            request = urllib.request.Request(url.url, data, dict(url.headers), method="PUT")
            with urllib.request.urlopen(request, timeout=30) as response:
                parts.append(Part(number, response.headers["ETag"], url.url))
        assert not store.exists("big/weights.bin")  # nothing visible before completion
        backend.complete_multipart("big/weights.bin", upload_id, parts)
        assert store.read_bytes("big/weights.bin") == first + last
        assert list(backend.list_multipart_uploads("")) == []


def test_abort_is_idempotent_and_listing_respects_boundaries(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        backend = store.backend
        foo = backend.create_multipart("foo")
        foobar = backend.create_multipart("foobar/x.bin")
        inside = backend.create_multipart("foo/x.bin")
        assert sorted(u.upload_id for u in backend.list_multipart_uploads("foo")) == sorted([foo, inside])
        for path, upload_id in (("foo", foo), ("foobar/x.bin", foobar), ("foo/x.bin", inside)):
            backend.abort_multipart(path, upload_id)
            backend.abort_multipart(path, upload_id)  # again: no error
        assert list(backend.list_multipart_uploads("")) == []


def test_wrong_secret_is_unauthenticated(unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("f.txt", b"f")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with pytest.raises(Unauthenticated, match=r"SignatureDoesNotMatch.*AWS_SECRET_ACCESS_KEY"):
            store.list_artifacts()
        # A HEAD answer carries no error code; the plugin asks again to name the problem.
        with pytest.raises(Unauthenticated, match="SignatureDoesNotMatch"):
            store.stat("f.txt")
        with pytest.raises(Unauthenticated):
            store.write_bytes("g.txt", b"g")


def test_unknown_access_key_is_unauthenticated(unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with (
        ArtifactStore(unique_uri, settings=TUNED) as store,
        pytest.raises(Unauthenticated, match="InvalidAccessKeyId"),
    ):
        store.download_artifacts("f.txt")


def test_no_credentials_at_all_is_unauthenticated(unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    no_credentials = pytest.raises(Unauthenticated, match=r"no usable AWS credentials.*AWS_ACCESS_KEY_ID")
    with ArtifactStore(unique_uri, settings=TUNED) as store, no_credentials:
        store.list_artifacts()


def test_missing_bucket_is_not_found_naming_bucket_and_endpoint(s3_env: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"f")
    named = rf"S3 bucket 'no-such-bucket-here'.*NoSuchBucket.*endpoint {s3_env.endpoint}"
    with ArtifactStore("s3://no-such-bucket-here/runs/1", settings=TUNED) as store:
        with pytest.raises(NotFound, match=named):
            store.list_artifacts()
        with pytest.raises(NotFound, match=named):
            store.download_artifacts("model.bin", str(tmp_path / "dst"))
        with pytest.raises(NotFound, match=named):
            store.log_artifact(str(tmp_path / "f.txt"))
        with pytest.raises(NotFound, match=named):
            list(store.read("model.bin"))
    assert not (tmp_path / "dst" / "model.bin").exists()


def test_missing_object_names_key_and_endpoint(unique_uri: str, s3_env: Any) -> None:
    with ArtifactStore(unique_uri) as store:
        key = store.backend.root.key("absent.bin")
        with pytest.raises(NotFound, match=rf"s3://{s3_env.bucket}/{key}.*endpoint {s3_env.endpoint}"):
            list(store.read("absent.bin"))


def failing_part(number: int, times: int) -> tuple[Callable[..., None], list[int]]:
    """A before-send handler that drops the connection for part ``number``, ``times`` times."""
    attempts: list[int] = []

    def fail(request: Any, **kwargs: Any) -> None:
        if parse_qs(urlsplit(request.url).query)["partNumber"] == [str(number)]:
            attempts.append(number)
            if len(attempts) <= times:
                raise ConnectionClosedError(endpoint_url=request.url)

    return fail, attempts


def test_failure_mid_upload_leaves_no_object_and_no_pending_upload(
    unique_uri: str, tmp_path: Path, inject: Recorder, record: Recorder
) -> None:
    (tmp_path / "big.bin").write_bytes(random_bytes(17 * MiB, seed=3))  # 4 parts
    fail, attempts = failing_part(3, times=1000)
    # Resuming off: aborted on failure (on, the parts stay for the next attempt: ResumeTests).
    with ArtifactStore(unique_uri, settings=TUNED.replace(resume=False)) as store:
        client = store.backend.root.client
        with (
            inject(client, "UploadPart", fail),
            record(client) as sent,
            pytest.raises(TransientError) as raised,
        ):
            store.log_artifact(str(tmp_path / "big.bin"))
        assert "gave up after 3 attempts" in str(raised.value)  # the engine retried (max_retries=2)
        assert len(attempts) == 6  # ... and botocore tried twice each time
        assert "AbortMultipartUpload" in {s.operation for s in sent}
        assert not store.exists("big.bin")
        assert store.list_artifacts() == []
        assert list(store.backend.list_multipart_uploads("")) == []


def test_transient_part_failure_is_retried(unique_uri: str, tmp_path: Path, inject: Recorder) -> None:
    data = random_bytes(17 * MiB, seed=4)
    (tmp_path / "big.bin").write_bytes(data)
    fail, attempts = failing_part(3, times=3)  # botocore's two tries, then the engine's retry's first
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with inject(store.backend.root.client, "UploadPart", fail):
            store.log_artifact(str(tmp_path / "big.bin"))
        assert len(attempts) == 4
        assert hashlib.sha256(store.read_bytes("big.bin")).digest() == hashlib.sha256(data).digest()


def test_broken_stream_mid_multipart_leaves_nothing(unique_uri: str) -> None:
    def chunks() -> Any:
        yield random_bytes(11 * MiB, seed=5)  # two parts sent
        raise OSError("the producer died")

    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with pytest.raises(OSError, match="the producer died"):
            store.write("stream.bin", chunks())
        assert not store.exists("stream.bin")
        assert list(store.backend.list_multipart_uploads("")) == []


def test_clients_are_shared(
    unique_uri: str, tmp_path: Path, aws_env: pytest.MonkeyPatch, record: Recorder
) -> None:
    write_tree(tmp_path / "src", {f"f{i}.txt": b"x" for i in range(30)})
    with ArtifactStore(unique_uri) as first, ArtifactStore(unique_uri + "/other") as second:
        client = first.backend.root.client
        assert second.backend.root.client is client
        made = cached_clients()
        with record(client) as sent:
            first.log_artifacts(str(tmp_path / "src"))
        assert cached_clients() == made
        assert [s.operation for s in sent].count("PutObject") == 30  # every file through the one client
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "another-secret")  # other credentials: another client
    with ArtifactStore(unique_uri) as third:
        assert third.backend.root.client is not client


def test_one_client_per_config_under_concurrency(unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER", f"owner-{time.time_ns()}")  # a config never seen

    def resolve(_: int) -> int:
        with ArtifactStore(unique_uri) as store:
            return id(store.backend.root.client)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert len(set(pool.map(resolve, range(16)))) == 1


def test_pool_holds_both_engine_pools(unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("MLARTIFACTS_MAX_WORKERS", "24")
    with ArtifactStore(unique_uri) as store:
        assert store.backend.root.client.meta.config.max_pool_connections == 48
        assert store.backend.root.client.meta.config.retries["total_max_attempts"] == 2


def test_pool_follows_the_store_settings(unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    """Settings given to the store, not the environment, size the client's connection pool."""
    aws_env.setenv("MLARTIFACTS_MAX_WORKERS", "10")
    with ArtifactStore(unique_uri, settings=Settings(max_workers=32)) as store:
        assert store.backend.root.client.meta.config.max_pool_connections == 64
    with ArtifactStore(unique_uri) as store:
        assert store.backend.root.client.meta.config.max_pool_connections == 20


def test_server_side_copy(unique_uri: str, s3_env: Any, record: Recorder) -> None:
    with ArtifactStore(unique_uri) as store, ArtifactStore(unique_uri + "-copy") as other:
        store.write_bytes("src/config.json", b'{"lr": 0.1}')
        with record(store.backend.root.client) as sent:
            store.copy_to("src/config.json", other, "dst/config.json")
        assert "CopyObject" in {s.operation for s in sent}
        assert not {"GetObject", "PutObject"} & {s.operation for s in sent}  # no bytes through us
        assert other.read_bytes("dst/config.json") == b'{"lr": 0.1}'
        key = other.backend.root.key("dst/config.json")
        assert s3_env.client().head_object(Bucket=s3_env.bucket, Key=key)["ContentType"] == "application/json"


def test_copy_above_the_single_request_limit_goes_in_parts(
    unique_uri: str, record: Recorder, inject: Any
) -> None:
    # The 5 GiB limit, scaled down to 5 MiB so the multipart branch runs here.
    data = random_bytes(12 * MiB, seed=6)
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("big.bin", data)
        root = store.backend.root
        assert isinstance(root, S3Root)
        threads = set()
        with (
            record(root.client) as sent,
            inject(root.client, "UploadPartCopy", lambda **kwargs: threads.add(threading.get_ident())),
        ):
            copy_object(root, root.key("big.bin"), root, root.key("copy.bin"), multipart_threshold=5 * MiB)
        assert [s.operation for s in sent].count("UploadPartCopy") == 3
        assert hashlib.sha256(store.read_bytes("copy.bin")).digest() == hashlib.sha256(data).digest()
        # Every request from the calling thread: no managed transfer with its own threads and
        # retries, outside the engine's deadline (the engine bounds and retries the call).
        assert threads == {threading.get_ident()}
        assert store.stat("copy.bin").file_size == len(data)


def test_a_copy_in_parts_stops_when_its_deadline_has_passed(
    unique_uri: str, record: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlartifacts_s3._objects as objects

    with ArtifactStore(unique_uri) as store:
        store.write_bytes("big.bin", random_bytes(12 * MiB, seed=8))
        root = store.backend.root
        assert isinstance(root, S3Root)
        monkeypatch.setattr(objects, "time_left", lambda: -1.0)  # as inside an abandoned engine call
        with record(root.client) as sent, pytest.raises(OperationTimeout):
            copy_object(root, root.key("big.bin"), root, root.key("copy.bin"), multipart_threshold=5 * MiB)
        operations = [s.operation for s in sent]
        assert "UploadPartCopy" not in operations and "AbortMultipartUpload" in operations
        assert not store.exists("copy.bin")


def test_directory_markers_are_not_files(unique_uri: str, s3_env: Any, tmp_path: Path) -> None:
    admin, root = s3_env.client(), unique_uri.split("/", 3)[3]
    admin.put_object(Bucket=s3_env.bucket, Key=f"{root}/made-in-console/", Body=b"")
    admin.put_object(Bucket=s3_env.bucket, Key=f"{root}/made-in-console/data.csv", Body=b"a,b")
    with ArtifactStore(unique_uri) as store:
        assert [(e.path, e.is_dir) for e in store.list_artifacts()] == [("made-in-console", True)]
        assert [e.path for e in store.list_artifacts("made-in-console")] == ["made-in-console/data.csv"]
        assert [f.path for f in store.iter_files()] == ["made-in-console/data.csv"]
        assert store.stat("made-in-console").is_dir
        out = store.download_artifacts("made-in-console", str(tmp_path))
        assert sorted(p.name for p in Path(out).iterdir()) == ["data.csv"]


def test_small_bodies_skip_expect_continue(unique_uri: str, tmp_path: Path, record: Recorder) -> None:
    (tmp_path / "big.bin").write_bytes(random_bytes(6 * MiB, seed=7))
    with ArtifactStore(unique_uri, settings=TUNED) as store, record(store.backend.root.client) as sent:
        store.write_bytes("small.txt", b"small")
        store.log_artifact(str(tmp_path / "big.bin"))  # parts of 5 MiB and 1 MiB
    assert [s.headers.get("expect") for s in sent if s.operation == "PutObject"] == [None]
    parts = sorted(
        (int(s.headers["content-length"]), s.headers.get("expect"))
        for s in sent
        if s.operation == "UploadPart"
    )
    # A large part still waits for the go-ahead, so a refused request does not send 5 MiB for nothing.
    assert parts == [(1 * MiB, None), (5 * MiB, "100-continue")]
