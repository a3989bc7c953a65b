"""Batches of small files over obstore (``_fast``), against the session's SeaweedFS.

What the batch path must keep: every byte, the object's headers (Content-Type from the
name, ``MLFLOW_S3_UPLOAD_EXTRA_ARGS``), the settings that decide whether obstore may send
at all, and errors from the same table as boto3's. The contract suite's BatchTests
cover names, missing files and unsafe paths.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import BackendError, NotFound, PermissionDenied, TransientError, Unauthenticated
from mlartifacts.testing.contract import random_bytes
from mlartifacts_s3._errors import translate_obstore
from mlartifacts_s3._fast import put_attributes, usable

#: Every small file in batches of three, two batches at a time.
BATCHED = Settings(
    batch_files=3, batches_in_flight=2, retry_backoff=0.01, retry_backoff_max=0.05, max_retries=1
)


def _tree(base: Path, count: int = 7) -> dict[str, bytes]:
    files = {f"d{i % 2}/f{i}.txt": random_bytes(100 + i * 37, seed=i) for i in range(count)}
    for name, data in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)
    return files


def _calls(store: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the batch hooks the store's backend calls from now on."""
    seen: list[str] = []
    backend = store.backend
    for name in ("upload_batch", "download_batch"):
        original = getattr(backend, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(backend, name, spy)
    return seen


def test_tree_round_trip_in_batches(
    unique_uri: str, tmp_path: Path, s3_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _tree(tmp_path / "src")
    with ArtifactStore(unique_uri, settings=BATCHED) as store:
        assert store.capabilities.batch
        calls = _calls(store, monkeypatch)
        store.log_artifacts(str(tmp_path / "src"), "run")
        out = Path(store.download_artifacts("run", str(tmp_path / "dst")))
        root = store.backend.root
    assert calls.count("upload_batch") >= 2 and calls.count("download_batch") >= 2
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    # Content-Type from the name, as boto3's PutObject sets it.
    head = s3_env.client().head_object(Bucket=root.bucket, Key=root.key("run/d0/f0.txt"))
    assert head["ContentType"] == "text/plain"


def test_upload_extra_args_reach_batched_objects(
    unique_uri: str, tmp_path: Path, s3_env: Any, aws_env: pytest.MonkeyPatch
) -> None:
    extra = {"Metadata": {"team": "vision"}, "CacheControl": "no-cache", "ContentType": "application/x-test"}
    aws_env.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", json.dumps(extra))
    _tree(tmp_path / "src", 4)
    with ArtifactStore(unique_uri, settings=BATCHED) as store:
        assert store.capabilities.batch
        store.log_artifacts(str(tmp_path / "src"))
        root = store.backend.root
    head = s3_env.client().head_object(Bucket=root.bucket, Key=root.key("d1/f1.txt"))
    # The user's metadata, and the object's SHA-256 recorded beside it as every PUT records it.
    digest = hashlib.sha256((tmp_path / "src" / "d1" / "f1.txt").read_bytes()).hexdigest()
    assert head["Metadata"] == {"team": "vision", "mlartifacts-sha256": digest}
    assert head["CacheControl"] == "no-cache"
    assert head["ContentType"] == "application/x-test"  # the variable wins over the guess


def test_put_attributes_map_boto3_arguments() -> None:
    assert put_attributes("a/b.json", {}) == {"Content-Type": "application/json"}
    assert put_attributes(
        "x.unknown-ext", {"ContentEncoding": "gzip", "Metadata": {"k": "v"}, "SSEKMSKeyId": "id"}
    ) == {
        "Content-Encoding": "gzip",
        "k": "v",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLFLOW_S3_EXPECTED_BUCKET_OWNER", "123456789012"),  # a header obstore does not send
        ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"ACL": "private"}'),  # nor this upload argument
    ],
)
def test_settings_obstore_cannot_express_keep_boto3(
    unique_uri: str, aws_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    aws_env.setenv(variable, value)
    with ArtifactStore(unique_uri) as store:
        assert not store.capabilities.batch
        assert not usable(store.backend.root)


def test_no_credentials_keeps_boto3_and_its_error(
    seaweedfs: Any, aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", seaweedfs.endpoint)
    _tree(tmp_path / "src", 3)
    with ArtifactStore(f"s3://{seaweedfs.bucket}/nocreds", settings=BATCHED) as store:
        assert not store.capabilities.batch
        with pytest.raises(Unauthenticated, match="no usable AWS credentials"):
            store.log_artifacts(str(tmp_path / "src"))


def test_wrong_secret_in_a_batch(unique_uri: str, tmp_path: Path, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    _tree(tmp_path / "src", 3)
    with ArtifactStore(unique_uri, settings=BATCHED) as store:
        assert store.capabilities.batch
        with pytest.raises(Unauthenticated, match="SignatureDoesNotMatch"):
            store.log_artifacts(str(tmp_path / "src"))


def test_missing_bucket_in_a_batch(seaweedfs: Any, s3_env: Any, tmp_path: Path) -> None:
    _tree(tmp_path / "src", 3)
    with (
        ArtifactStore("s3://no-such-bucket-here/x", settings=BATCHED) as store,
        pytest.raises(NotFound, match="no-such-bucket-here"),
    ):
        store.log_artifacts(str(tmp_path / "src"))


def test_anonymous_batch_reads_of_a_public_bucket(
    seaweedfs: Any, aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = seaweedfs.client()
    files = {f"pub/f{i}.txt": random_bytes(50 + i, seed=i) for i in range(4)}
    for name, data in files.items():
        admin.put_object(Bucket=seaweedfs.public_bucket, Key=f"fast/{name}", Body=data)
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", seaweedfs.endpoint)
    aws_env.setenv("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION", "unsigned")
    with ArtifactStore(f"s3://{seaweedfs.public_bucket}/fast", settings=BATCHED) as store:
        assert store.capabilities.batch
        out = Path(store.download_artifacts("pub", str(tmp_path / "dst")))
        assert {f"pub/{p.name}": p.read_bytes() for p in out.iterdir()} == files
        with pytest.raises(PermissionDenied):
            store.backend.upload_batch("denied", iter([("a.txt", b"a")]))


def test_https_batches_and_the_ca_bundle(seaweedfs: Any, aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if seaweedfs.https_endpoint is None:
        pytest.skip("openssl is missing: no HTTPS endpoint")
    for name, value in seaweedfs.user_env(seaweedfs.https_endpoint).items():
        aws_env.setenv(name, value)
    files = _tree(tmp_path / "src", 4)
    uri = f"s3://{seaweedfs.bucket}/tls-fast"
    with ArtifactStore(uri, settings=BATCHED) as store, pytest.raises(BackendError, match="AWS_CA_BUNDLE"):
        store.log_artifacts(str(tmp_path / "src"))
    # With the CA bundle: this self-signed certificate, its own CA, is one OpenSSL (boto3)
    # accepts and obstore's webpki refuses, so the batches go back to boto3.
    aws_env.setenv("AWS_CA_BUNDLE", seaweedfs.ca_bundle)
    with ArtifactStore(uri, settings=BATCHED) as store:
        assert store.capabilities.batch
        store.log_artifacts(str(tmp_path / "src"))
        out = Path(store.download_artifacts("", str(tmp_path / "dst")))
        store.delete_artifacts("")
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


class _Root:
    """Just what translate_obstore reads of a root."""

    bucket = "b"
    endpoint = "http://127.0.0.1:9"

    class config:
        unsigned = False


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Object at location k not found: Error performing GET http://h/b/k - Server returned "
         "non-2xx status code: 404 Not Found: <Error><Code>NoSuchKey</Code><Message>x</Message></Error>",
         NotFound),
        ("Error performing PUT - Server returned non-2xx status code: 403 Forbidden: <Error><Code>"
         "AccessDenied</Code><Message>no</Message></Error>\n\nDebug source:\nsecret stuff", PermissionDenied),
        ("status code: 403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code></Error>", Unauthenticated),
        ("status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>", TransientError),
        ("status code: 500 Internal Server Error: ", TransientError),
        ("Generic S3 error: Error performing PUT http://127.0.0.1:1/b/k - HTTP error: error sending request",
         TransientError),
        ("Generic S3 error: something else entirely", BackendError),
    ],
)  # fmt: skip
def test_obstore_errors_by_the_table(text: str, kind: type[Exception]) -> None:
    error = translate_obstore(RuntimeError(text), _Root(), "k")  # type: ignore[arg-type]
    assert type(error) is kind
    assert "s3://b/k" in str(error)
    assert "Debug source" not in str(error) and "secret stuff" not in str(error)
