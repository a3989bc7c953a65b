"""Each setting, applied for real against SeaweedFS (requests observed through botocore's events)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import BackendError, PermissionDenied, TransientError
from mlartifacts.testing.contract import random_bytes
from mlartifacts.testing.servers import free_port
from mlartifacts_s3._root import DIGEST_KEY

MiB = 1024 * 1024
#: Multipart from 5 MiB (S3's minimum part), quick retries.
TUNED = Settings(
    multipart_threshold=5 * MiB,
    multipart_chunksize=5 * MiB,
    ranged_download_threshold=5 * MiB,
    ranged_download_chunksize=2 * MiB,
    retry_backoff=0.01,
    retry_backoff_max=0.05,
    max_retries=1,
)

Recorder = Callable[..., Any]


def head(s3_env: Any, store: ArtifactStore, path: str) -> dict[str, Any]:
    response: dict[str, Any] = s3_env.client().head_object(
        Bucket=store.backend.root.bucket, Key=store.backend.root.key(path)
    )
    return response


def test_endpoint_is_used(s3_env: Any, unique_uri: str, record: Recorder) -> None:
    with ArtifactStore(unique_uri) as store:
        with record(store.backend.root.client) as sent:
            store.write_bytes("x.txt", b"x")
            assert store.read_bytes("x.txt") == b"x"
        assert sent and all(s.url.startswith(f"{s3_env.endpoint}/") for s in sent)


def test_unreachable_endpoint_is_transient_and_named(aws_env: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    aws_env.setenv("AWS_ACCESS_KEY_ID", "k")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with ArtifactStore("s3://bucket/x", settings=TUNED) as store, pytest.raises(TransientError) as raised:
        store.write_bytes("a.txt", b"a")
    assert endpoint in str(raised.value)
    assert "gave up after 2 attempts" in str(raised.value)


def test_content_type_from_the_file_name(
    s3_env: Any, unique_uri: str, tmp_path: Path, record: Recorder
) -> None:
    (tmp_path / "plot.png").write_bytes(b"\x89PNG")
    (tmp_path / "weights.tar").write_bytes(random_bytes(11 * MiB))
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        store.log_artifact(str(tmp_path / "plot.png"), "plots")  # one PutObject
        store.log_artifact(str(tmp_path / "weights.tar"), "model")  # multipart
        store.write_bytes("conf/config.json", b"{}")
        with record(store.backend.root.client) as sent:
            store.write_bytes("conf/no-extension", b"?")
        assert head(s3_env, store, "plots/plot.png")["ContentType"] == "image/png"
        assert head(s3_env, store, "model/weights.tar")["ContentType"] == "application/x-tar"
        assert head(s3_env, store, "conf/config.json")["ContentType"] == "application/json"
    # No guess, no header: the server applies its default (as with MLflow).
    assert "content-type" not in sent[0].headers


EXTRA = {"Metadata": {"team": "vision"}, "ServerSideEncryption": "AES256", "CacheControl": "max-age=60"}


def test_upload_extra_args_reach_every_upload(
    s3_env: Any, unique_uri: str, tmp_path: Path, aws_env: pytest.MonkeyPatch, record: Recorder
) -> None:
    aws_env.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", json.dumps(EXTRA))
    (tmp_path / "small.bin").write_bytes(b"small")
    (tmp_path / "large.bin").write_bytes(random_bytes(11 * MiB))
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        with record(store.backend.root.client) as sent:
            store.log_artifact(str(tmp_path / "small.bin"))  # PutObject
            store.log_artifact(str(tmp_path / "large.bin"))  # CreateMultipartUpload + UploadPart x3
            store.write_bytes("streamed.bin", b"stream")  # PutObject from a stream
        presigned = store.backend.presign("presigned.txt", "PUT", 60)
        request = urllib.request.Request(presigned.url, b"via url", dict(presigned.headers), method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        for path in ("small.bin", "large.bin", "streamed.bin", "presigned.txt"):
            stored = head(s3_env, store, path)
            # The user's metadata, beside the digest of single-request uploads (issue 15).
            assert {k: v for k, v in stored["Metadata"].items() if k != DIGEST_KEY} == {"team": "vision"}, (
                path
            )
            if path in ("small.bin", "streamed.bin"):
                assert DIGEST_KEY in stored["Metadata"], path
            assert stored["ServerSideEncryption"] == "AES256", path
            assert stored["CacheControl"] == "max-age=60", path
    assert presigned.headers["x-amz-meta-team"] == "vision"
    assert presigned.headers["x-amz-server-side-encryption"] == "AES256"
    assert presigned.headers["Content-Type"] == "text/plain"
    # Each request got only what its operation takes (as boto3's upload_file does).
    by_operation = {s.operation: s.headers for s in sent}
    assert by_operation.keys() == {
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "PutObjectTagging",  # the multipart object's digest (issue 15)
    }
    assert by_operation["CreateMultipartUpload"]["x-amz-meta-team"] == "vision"
    assert "x-amz-meta-team" not in by_operation["UploadPart"]


def test_upload_extra_args_win_over_the_guessed_content_type(
    s3_env: Any, unique_uri: str, aws_env: pytest.MonkeyPatch
) -> None:
    aws_env.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"ContentType": "application/x-custom"}')
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("data.json", b"{}")
        assert head(s3_env, store, "data.json")["ContentType"] == "application/x-custom"


def test_expected_bucket_owner_goes_on_every_request(
    s3_env: Any, unique_uri: str, tmp_path: Path, aws_env: pytest.MonkeyPatch, record: Recorder
) -> None:
    owner = "123456789012"
    aws_env.setenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER", owner)
    (tmp_path / "large.bin").write_bytes(random_bytes(6 * MiB))
    with ArtifactStore(unique_uri, settings=TUNED) as store, record(store.backend.root.client) as sent:
        store.write_bytes("a/small.txt", b"small")
        store.log_artifact(str(tmp_path / "large.bin"), "a")
        store.list_artifacts("a")
        list(store.iter_files())
        store.stat("a")
        store.download_artifacts("a", str(tmp_path / "dst"))  # ranged reads for the large file
        assert store.read_bytes("a/small.txt") == b"small"
        store.copy_to("a/small.txt", store, "b/copy.txt")
        upload_id = store.backend.create_multipart("c/pending.bin")
        assert [u.upload_id for u in store.backend.list_multipart_uploads("c")] == [upload_id]
        store.backend.abort_multipart("c/pending.bin", upload_id)
        store.delete_artifacts()
        presigned = store.presign("nothing-here.txt")
    operations = {s.operation for s in sent}
    assert {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "ListObjectsV2",
            "HeadObject", "GetObject", "CopyObject", "ListMultipartUploads", "AbortMultipartUpload",
            "DeleteObjects"} <= operations  # fmt: skip
    missing = [s.operation for s in sent if s.headers.get("x-amz-expected-bucket-owner") != owner]
    assert missing == []
    # In a presigned URL it is a signed query parameter: whoever holds the URL needs no header.
    query = parse_qs(urlsplit(presigned.url).query)
    assert query["x-amz-expected-bucket-owner"] == [owner]
    assert query["X-Amz-SignedHeaders"] == ["host"]


def test_presigned_get_with_bucket_owner_works(
    s3_env: Any, unique_uri: str, aws_env: pytest.MonkeyPatch
) -> None:
    aws_env.setenv("MLFLOW_S3_EXPECTED_BUCKET_OWNER", "123456789012")
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("owned.txt", b"owned")
        with urllib.request.urlopen(store.presign("owned.txt").url, timeout=30) as response:
            assert response.read() == b"owned"


def test_path_addressing(s3_env: Any, unique_uri: str, aws_env: pytest.MonkeyPatch, record: Recorder) -> None:
    aws_env.setenv("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "path")
    with ArtifactStore(unique_uri) as store, record(store.backend.root.client) as sent:
        store.write_bytes("p.txt", b"p")
        assert store.read_bytes("p.txt") == b"p"
    assert {urlsplit(s.url).path.split("/")[1] for s in sent} == {s3_env.bucket}


class Stop(Exception):
    """Raised before a request leaves, to look at it without sending it."""


def test_virtual_addressing(s3_env: Any, aws_env: pytest.MonkeyPatch, inject: Recorder) -> None:
    # Virtual hosts need DNS for <bucket>.<host>; the request is stopped before it
    # is sent, so nothing resolves or leaves: only the URL botocore built is checked.
    port = urlsplit(s3_env.endpoint).port
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://localhost:{port}")
    aws_env.setenv("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "virtual")
    urls = []

    def stop(request: Any, **kwargs: Any) -> None:
        urls.append(request.url)
        raise Stop(request.url)

    store = ArtifactStore(f"s3://{s3_env.bucket}/v")
    with store, inject(store.backend.root.client, "PutObject", stop), pytest.raises(Exception, match="Stop"):
        store.write_bytes("v.txt", b"v")
    assert urlsplit(urls[0]).netloc == f"{s3_env.bucket}.localhost:{port}"
    assert urlsplit(urls[0]).path == "/v/v.txt"


def test_unsigned_requests_read_a_public_bucket(
    s3_env: Any, aws_env: pytest.MonkeyPatch, tmp_path: Path, record: Recorder
) -> None:
    s3_env.client().put_object(Bucket=s3_env.public_bucket, Key="shared/model.bin", Body=b"public weights")
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")
    aws_env.setenv("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION", "unsigned")
    with ArtifactStore(f"s3://{s3_env.public_bucket}/shared") as store:
        with record(store.backend.root.client) as sent:
            assert [e.path for e in store.list_artifacts()] == ["model.bin"]
            local = store.download_artifacts("model.bin", str(tmp_path))
            assert Path(local).read_bytes() == b"public weights"
        assert sent and not any("authorization" in s.headers for s in sent)
        with pytest.raises(PermissionDenied, match="MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION=unsigned"):
            store.write_bytes("not-allowed.txt", b"x")
    with ArtifactStore(f"s3://{s3_env.bucket}/private") as private, pytest.raises(PermissionDenied):
        private.list_artifacts()


def test_region(s3_env: Any, unique_uri: str, aws_env: pytest.MonkeyPatch, record: Recorder) -> None:
    aws_env.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    with ArtifactStore(unique_uri) as store:
        client = store.backend.root.client
        assert client.meta.region_name == "eu-west-3"
        with record(client) as sent:
            store.write_bytes("r.txt", b"regional")
        assert "/eu-west-3/s3/aws4_request" in sent[0].headers["authorization"]
        url = store.presign("r.txt").url
        assert "eu-west-3" in parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
        with urllib.request.urlopen(url, timeout=30) as response:  # SeaweedFS checks the signature
            assert response.read() == b"regional"


@pytest.fixture
def https(s3_env: Any, aws_env: pytest.MonkeyPatch) -> Any:
    if s3_env.https_endpoint is None:
        pytest.skip(
            "openssl not found, so no TLS port: scripts/install installs it (plugins/s3/ci/apt-packages)"
        )
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", s3_env.https_endpoint)
    return s3_env


def test_tls_certificate_is_verified_by_default(https: Any, unique_uri: str) -> None:
    with ArtifactStore(unique_uri, settings=TUNED) as store, pytest.raises(BackendError) as raised:
        store.write_bytes("t.txt", b"t")
    assert not raised.value.transient
    assert "AWS_CA_BUNDLE" in str(raised.value) and "MLFLOW_S3_IGNORE_TLS=true" in str(raised.value)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # what was asked for
def test_ignore_tls(https: Any, unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    data = random_bytes(6 * MiB, seed=9)
    with ArtifactStore(unique_uri, settings=TUNED) as store:
        store.write_bytes("t.bin", data)  # multipart
        assert hashlib.sha256(store.read_bytes("t.bin")).digest() == hashlib.sha256(data).digest()


def test_ca_bundle(https: Any, unique_uri: str, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_CA_BUNDLE", https.ca_bundle)
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("t.txt", b"trusted")
        assert store.read_bytes("t.txt") == b"trusted"


def test_presigned_url_tampering_is_refused(s3_env: Any, unique_uri: str) -> None:
    # SigV4 is really checked: the URLs the plugin hands out are not just any URL.
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("secret.txt", b"s")
        url = store.presign("secret.txt").url
    tampered = url.replace("secret.txt", "other.txt")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(tampered, timeout=30)
    assert raised.value.code == 403
    raised.value.close()
