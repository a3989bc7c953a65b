"""boto3 clients: one per configuration, shared by every thread and every root.

A boto3 client is thread-safe and holds the connection pool, so making one per
file would pay client construction and a TLS handshake per file. Clients are
cached by :class:`S3Config` (endpoint, TLS verification, addressing style,
signature version, bucket owner, upload arguments, pool size and a digest of the
``AWS_*`` environment, which carries credentials and region).

Two settings apply to requests rather than to the connection, and are attached
to the client as botocore event handlers, so no call can forget them:
``MLFLOW_S3_EXPECTED_BUCKET_OWNER`` goes on every request whose operation takes
it, and ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` on every upload request (single put,
multipart create, parts and completion, and the presigned forms of these).
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import weakref
from typing import TYPE_CHECKING, Any, Iterator, Literal, cast

from mlartifacts.errors import ConfigError
from mlartifacts.shared import SharedCache

from ._config import S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["UPLOAD_OPERATIONS", "cached_clients", "client_session", "get_client", "signed_headers"]

#: Operations that write an object, and so receive MLFLOW_S3_UPLOAD_EXTRA_ARGS
#: (each only the arguments its input takes, as boto3's upload_file does).
UPLOAD_OPERATIONS = frozenset({"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"})

AddressingStyle = Literal["auto", "virtual", "path"]  # checked when read (_config)

_MAX_CLIENTS = 32
#: Bodies up to this size go without "Expect: 100-continue", as the AWS SDK for Go
#: does: waiting for the server's go-ahead costs a round trip per small file, and
#: only saves sending a large body that would be refused.
CONTINUE_THRESHOLD = 2 * 1024 * 1024
_clients: SharedCache[S3Config, S3Client] = SharedCache(limit=_MAX_CLIENTS)
_presign = threading.local()
# The botocore session each client was made from (its credential chain and config).
_sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

# Headers that are never part of what a presigned URL's holder must send.
_NOT_ECHOED = {"host", "user-agent", "expect", "x-amzn-trace-id", "transfer-encoding"}
# botocore's filler Content-Type, which its presigner drops too.
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def get_client(config: S3Config) -> S3Client:
    """The shared client for ``config``, made on first use (ConfigError for invalid upload arguments)."""
    return _clients.get(config, lambda: _make_client(config))


def client_session(client: S3Client) -> Any:
    """The botocore session ``client`` was made from (a new one for a client made elsewhere)."""
    session = _sessions.get(client)
    if session is None:
        import botocore.session

        session = botocore.session.get_session()
    return session


def cached_clients() -> int:
    """How many clients are cached (for tests and diagnostics)."""
    return len(_clients)


def _make_client(config: S3Config) -> S3Client:
    import boto3
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    # A session per client: boto3's default session is not thread-safe.
    core = botocore.session.get_session()
    # Listings carry a timestamp per key, which botocore's default parser (dateutil)
    # turns into a datetime in ~27 us: a third of the CPU of listing 1,000 small files.
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    client = boto3.session.Session(botocore_session=core).client(
        "s3",
        endpoint_url=config.endpoint_url,
        verify=config.verify,
        config=Config(
            signature_version=UNSIGNED if config.unsigned else "s3v4",
            s3={"addressing_style": cast(AddressingStyle, config.addressing_style)},
            max_pool_connections=config.max_pool_connections,
            connect_timeout=config.socket_timeout,
            read_timeout=config.socket_timeout,
            # The engine retries transient failures with backoff and a deadline;
            # botocore only gets one quick second try for a dropped connection.
            retries={"mode": "standard", "total_max_attempts": 2},
            # botocore >= 1.36 computes a CRC32 of every body by default: a second pass
            # over every byte uploaded (0.15 s of CPU per 512 MiB here) on top of the
            # SigV4 payload hash. As before 1.36 (and as s3transfer and MLflow ran for
            # years), checksums only where an operation requires one (DeleteObjects).
            request_checksum_calculation="when_required",
        ),
    )
    _sessions[client] = core
    extra = config.extra_args
    if extra:
        _check_extra_args(client, extra)
    events = client.meta.events
    events.register("provide-client-params.s3", _add_params(config.expected_bucket_owner, extra))
    events.register("before-sign.s3", _prepare_presigned)
    events.register_last("before-call.s3", _no_continue_for_small_bodies)
    return client


def parse_timestamp(value: Any) -> datetime.datetime:
    """S3's ``2024-01-31T12:00:00.000Z`` quickly, anything else as botocore parses it."""
    if isinstance(value, str) and value[-1:] == "Z" and value[10:11] == "T" and len(value) in (20, 24):
        try:
            return datetime.datetime(
                int(value[0:4]),
                int(value[5:7]),
                int(value[8:10]),
                int(value[11:13]),
                int(value[14:16]),
                int(value[17:19]),
                int(value[20:23]) * 1000 if len(value) == 24 else 0,
                tzinfo=datetime.timezone.utc,
            )
        except ValueError:
            pass
    from botocore.utils import parse_timestamp as parse

    return parse(value)


def _check_extra_args(client: S3Client, extra: dict[str, Any]) -> None:
    from botocore.validate import ParamValidator

    shape = client.meta.service_model.operation_model("PutObject").input_shape
    assert shape is not None  # PutObject has an input
    report = ParamValidator().validate({"Bucket": "bucket", "Key": "key", **extra}, shape)
    if report.has_errors():
        raise ConfigError(
            "MLFLOW_S3_UPLOAD_EXTRA_ARGS holds arguments S3's PutObject does not take: "
            + report.generate_report()
        )


def _add_params(owner: str | None, extra: dict[str, Any]) -> Any:
    def add(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        members = model.input_shape.members if model.input_shape is not None else {}
        if owner:
            for name in ("ExpectedBucketOwner", "ExpectedSourceBucketOwner"):
                if name in members:
                    params.setdefault(name, owner)
        if extra and model.name in UPLOAD_OPERATIONS:
            # As in MLflow, the variable wins over what was guessed (Content-Type).
            for name, value in extra.items():
                if name not in members:
                    continue
                if name == "Metadata" and isinstance(params.get(name), dict) and isinstance(value, dict):
                    params[name] = {**value, **params[name]}  # the user's metadata, and our digest
                else:
                    params[name] = value

    return add


def _no_continue_for_small_bodies(params: dict[str, Any], **kwargs: Any) -> None:
    headers = params.get("headers", {})
    if headers.get("Expect") == "100-continue":
        from botocore.utils import determine_content_length

        size = determine_content_length(params.get("body"))
        if size is not None and size <= CONTINUE_THRESHOLD:
            del headers["Expect"]


def _prepare_presigned(request: Any, **kwargs: Any) -> None:
    """Before a presigned URL is signed: owner into the query, headers to echo recorded."""
    if not request.context.get("is_presign_request"):
        return
    owner = request.headers.get("x-amz-expected-bucket-owner")
    if owner is not None:
        # A signed header would have to be sent by whoever uses the URL (a browser
        # cannot); as a signed query parameter it travels inside the URL.
        del request.headers["x-amz-expected-bucket-owner"]
        request.params["x-amz-expected-bucket-owner"] = owner
    sink: dict[str, str] | None = getattr(_presign, "headers", None)
    if sink is not None:
        for name, value in request.headers.items():
            if name.lower() in _NOT_ECHOED or (
                name.lower() == "content-type" and value == _FORM_CONTENT_TYPE
            ):
                continue
            sink[name] = value.decode() if isinstance(value, bytes) else str(value)


@contextlib.contextmanager
def signed_headers() -> Iterator[dict[str, str]]:
    """Collect the headers signed into presigned URLs made in this block, by this thread.

    The holder of the URL must send them (Content-Type, server-side encryption...).
    """
    headers: dict[str, str] = {}
    _presign.headers = headers
    try:
        yield headers
    finally:
        _presign.headers = None
