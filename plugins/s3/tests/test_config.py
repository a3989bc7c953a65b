"""Settings and URIs: MLflow's variables with their meaning, and clear errors naming what is wrong.

These need no server: resolving a URI builds the client, which sends nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlartifacts import ArtifactStore
from mlartifacts.errors import ConfigError, InvalidUri
from mlartifacts_s3 import S3Config, S3Root


def resolve(uri: str) -> S3Root:
    with ArtifactStore(uri) as store:
        root = store.backend.root
    assert isinstance(root, S3Root)
    return root


def test_defaults(aws_env: pytest.MonkeyPatch) -> None:
    config = S3Config.from_env()
    assert (config.endpoint_url, config.verify, config.addressing_style, config.unsigned) == (
        None,
        None,
        "auto",
        False,
    )
    assert (config.expected_bucket_owner, config.extra_args) == (None, {})
    assert config.max_pool_connections == 20  # two engine pools of MLARTIFACTS_MAX_WORKERS=10


def test_every_setting_reads_its_variable(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked until a TLS handshake")
    env = {
        "MLFLOW_S3_ENDPOINT_URL": "https://minio.example:9000/",
        "AWS_CA_BUNDLE": str(bundle),
        "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE": "Path",
        "MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION": "unsigned",
        "MLFLOW_S3_EXPECTED_BUCKET_OWNER": "123456789012",
        "MLFLOW_S3_UPLOAD_EXTRA_ARGS": '{"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "1234"}',
        "MLARTIFACTS_MAX_WORKERS": "16",
    }
    config = S3Config.from_env(env)
    assert config.endpoint_url == "https://minio.example:9000"
    assert config.verify == str(bundle)
    assert config.addressing_style == "path"
    assert config.unsigned
    assert config.expected_bucket_owner == "123456789012"
    assert config.extra_args == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "1234"}
    assert config.max_pool_connections == 32
    assert S3Config.from_env({"MLFLOW_S3_IGNORE_TLS": "true"}).verify is False


def test_ignore_tls_and_ca_bundle_together_are_refused(aws_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    aws_env.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    aws_env.setenv("AWS_CA_BUNDLE", str(bundle))
    with pytest.raises(ConfigError, match=r"MLFLOW_S3_IGNORE_TLS and AWS_CA_BUNDLE.*not both"):
        ArtifactStore("s3://bucket/prefix")


INVALID = [
    ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "{not json", "is not valid JSON"),
    ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '["ServerSideEncryption"]', "must be a JSON object"),
    ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"NoSuchArgument": 1}', "NoSuchArgument"),
    ("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": "not a map"}', "Metadata"),
    ("MLFLOW_S3_IGNORE_TLS", "sometimes", "must be true or false"),
    ("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "sideways", "auto, path, virtual"),
    ("MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION", "s3v2", "s3v4, unsigned"),
    ("MLFLOW_S3_ENDPOINT_URL", "minio:9000", "must be an http:// or https:// URL"),
    ("AWS_CA_BUNDLE", "/nonexistent/ca.pem", "'/nonexistent/ca.pem', which is not a file"),
    ("MLARTIFACTS_MAX_WORKERS", "many", "must be an integer"),
]


@pytest.mark.parametrize(("name", "value", "says"), INVALID)
def test_invalid_setting_names_the_variable(
    aws_env: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    aws_env.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(name)) as raised:
        ArtifactStore("s3://bucket/prefix")
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/exp/1/run/artifacts/", "bucket", "exp/1/run/artifacts"),
        ("S3://bucket/a b/ç", "bucket", "a b/ç"),  # S3 URIs are not percent-encoded
    ],
)
def test_uri(aws_env: pytest.MonkeyPatch, uri: str, bucket: str, prefix: str) -> None:
    root = resolve(uri)
    assert (root.bucket, root.prefix) == (bucket, prefix)
    assert root.key("") == prefix
    assert root.key("x/y") == (f"{prefix}/x/y" if prefix else "x/y")
    assert root.rel(root.key("x/y")) == "x/y"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3:///path", r"expected s3://<bucket>/<path>"),
        ("s3://ab/path", r"at least 3 characters"),
        ("s3://bucket/path?versionId=1", r"no query or fragment"),
        ("s3://bucket/path#frag", r"no query or fragment"),
        ("s3://minio:9000/bucket/path", r"not a bucket name; the endpoint goes in MLFLOW_S3_ENDPOINT_URL"),
    ],
)
def test_invalid_uri(aws_env: pytest.MonkeyPatch, uri: str, message: str) -> None:
    with pytest.raises(InvalidUri, match=message):
        ArtifactStore(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "s3://minio.example.com:9000/bucket/exp/1",  # the endpoint where the bucket goes
        "s3://minio.example.com/bucket/exp/1",
        "s3://bucket/exp/1/minio.example.com:9000/bucket/exp/1",  # a root glued behind another
        "s3://bucket/http:/minio.example.com:9000/bucket/exp/1",
    ],
)
def test_endpoint_in_root_is_the_documented_pitfall(aws_env: pytest.MonkeyPatch, uri: str) -> None:
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", "http://minio.example.com:9000")
    with pytest.raises(InvalidUri, match=r"contains the endpoint .*s3://<bucket>/<key>/<bucket>/<key>"):
        ArtifactStore(uri)


def test_bucket_named_like_a_bare_endpoint_host_is_fine(aws_env: pytest.MonkeyPatch) -> None:
    # docker-compose style: service "minio" and a bucket that happens to share the name.
    aws_env.setenv("MLFLOW_S3_ENDPOINT_URL", "http://minio:9000")
    assert resolve("s3://minio/exp/1").bucket == "minio"


def test_equal_settings_make_equal_configs(aws_env: pytest.MonkeyPatch) -> None:
    # Equal configs share one client: key order in the JSON must not matter.
    first = S3Config.from_env({"MLFLOW_S3_UPLOAD_EXTRA_ARGS": json.dumps({"b": 1, "a": {"y": 2, "x": 1}})})
    second = S3Config.from_env({"MLFLOW_S3_UPLOAD_EXTRA_ARGS": '{"a": {"x": 1, "y": 2}, "b": 1}'})
    assert first == second
    one, two = ({"AWS_SECRET_ACCESS_KEY": secret} for secret in ("one", "two"))
    assert S3Config.from_env(one) != S3Config.from_env(two)
    assert "s3cr3t" not in repr(S3Config.from_env({"AWS_SECRET_ACCESS_KEY": "s3cr3t"}))  # a digest only
