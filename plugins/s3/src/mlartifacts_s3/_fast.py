"""Batches of small objects over obstore: many PUTs or GETs in flight from one thread.

botocore spends about 2.5 ms of CPU on every request (building, signing and parsing
it in Python), which caps a tree of small files at a few hundred files per second
whatever the parallelism. obstore makes the same requests in Rust. The engine hands
this module a group of a tree's small files (``Capabilities.batch``); the group's
requests run concurrently on one asyncio event loop, :data:`IN_FLIGHT` at a time.

boto3 stays the source of the settings' meaning: credentials come from a boto3
session (environment, ``AWS_PROFILE``, config files, roles: the same chain), the
region and endpoint from the root's boto3 client. A client someone watches
(:func:`observed`) keeps its requests. Roots whose settings obstore
cannot express (:func:`usable`: ``MLFLOW_S3_EXPECTED_BUCKET_OWNER``, upload
arguments such as ``ACL``, no credentials) do not batch, and so move every file
through boto3 as before.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime
import gc
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Iterator, Sequence, TypeVar
from urllib.parse import urlsplit

from mlartifacts import hookimpl
from mlartifacts import paths as _paths
from mlartifacts.errors import ArtifactError, InvalidPath, OperationTimeout
from mlartifacts.transfer import mismatch, sha256_hex, time_left

from ._client import client_session, get_client
from ._config import S3Config
from ._errors import is_tls_failure, translate_obstore, translated
from ._root import DIGEST_KEY, S3Root, put_params

if TYPE_CHECKING:
    from obstore.store import S3Store

__all__ = [
    "IN_FLIGHT",
    "download_batch",
    "fast_store",
    "note_failure",
    "put_attributes",
    "store_for",
    "upload_batch",
    "usable",
]

T = TypeVar("T")

#: Requests in flight per batch; the engine moves 4 batches at once by default. Tried
#: 4-20 on SeaweedFS (a loaded 2-core machine): 4 was slower, 8-20 within the noise.
IN_FLIGHT = 12

#: boto3 upload arguments that become object attributes (headers) of an obstore PUT.
_ATTRIBUTES = {
    "ContentType": "Content-Type",
    "ContentDisposition": "Content-Disposition",
    "ContentEncoding": "Content-Encoding",
    "ContentLanguage": "Content-Language",
    "CacheControl": "Cache-Control",
}
#: boto3 upload arguments that obstore sets on the store (every PUT of it).
_STORE_ARGS = {
    "ServerSideEncryption": "server_side_encryption",
    "SSEKMSKeyId": "sse_kms_key_id",
    "BucketKeyEnabled": "sse_bucket_key_enabled",
}
#: Body checksums obstore covers by itself: every signed PUT carries the SHA-256 of its body.
_SIGNED = {"ChecksumSHA256"}
#: Credentials are asked of boto3 again after this long (refreshable ones renew there).
_CREDENTIALS_TTL = datetime.timedelta(minutes=5)
_MAX_STORES = 32


@dataclass(frozen=True)
class _Key:
    config: S3Config
    bucket: str


_stores: dict[_Key, Any] = {}  # not SharedCache: they must be dropped before exit (_drop_stores)
_stores_lock = threading.Lock()
_NO_STORE = object()  # cached: this configuration has no fast path
# Stores given a CA bundle, and those whose endpoint's certificate obstore then refused.
# OpenSSL (boto3) accepts more than webpki (obstore): a self-signed certificate that is
# its own CA, as private MinIOs often have. Such an endpoint goes back to boto3.
_bundled: set[_Key] = set()
_boto3_only: set[_Key] = set()


def usable(root: S3Root) -> bool:
    """Whether obstore can make this root's requests exactly as boto3 would."""
    return store_for(root) is not None


def store_for(root: S3Root) -> S3Store | None:
    """The shared obstore store of this root's settings and bucket, or None where it cannot serve."""
    key = _Key(root.config, root.bucket)
    found: Any = _stores.get(key)
    if found is None:
        with _stores_lock:
            found = _stores.get(key)
            if found is None:
                found = _make_store(root) or _NO_STORE
                if len(_stores) >= _MAX_STORES:
                    del _stores[next(iter(_stores))]
                if not _stores:
                    atexit.register(_drop_stores)  # unregistered again when emptied
                _stores[key] = found
    return None if found is _NO_STORE else found


def fast_store(root: S3Root, operation: str) -> S3Store | None:
    """The store to send ``operation`` through, or None where boto3 must send it.

    None when obstore cannot express the root's settings, when someone watches the
    boto3 client send ``operation`` (:func:`observed`), or when obstore refused the
    endpoint's certificate.
    """
    store = store_for(root)
    if store is None or observed(root, operation) or _Key(root.config, root.bucket) in _boto3_only:
        return None
    return store


def note_failure(root: S3Root, exc: BaseException) -> None:
    """A request obstore failed (boto3 sends it again): a refused certificate sends this root to boto3."""
    _certificate_refused(root, [("", exc)])


def _drop_stores() -> None:
    """Drop every store while the interpreter is whole.

    A store left for the interpreter's finalization to drop makes obstore 0.12 abort
    the process (SIGABRT) about once in ten exits, after all work is done: measured
    7 of 60 runs of a tree upload, 0 of 60 with this.
    """
    with _stores_lock:
        _stores.clear()
        atexit.unregister(_drop_stores)
    gc.collect()  # stores held in reference cycles (finished tasks) go now too


def _expressible(extra: dict[str, Any]) -> bool:
    return all(
        name in _ATTRIBUTES or name in _STORE_ARGS or (name == "Metadata" and isinstance(value, dict))
        for name, value in extra.items()
    )


def _make_store(root: S3Root) -> S3Store | None:
    config = root.config
    if config.expected_bucket_owner or not _expressible(config.extra_args):
        return None  # headers obstore does not send: boto3 takes every request
    client = get_client(config)
    session = client_session(client)  # the client's own: its credential chain, already resolved
    bundle = None
    if config.verify is not False:  # AWS_CA_BUNDLE, or ca_bundle in ~/.aws/config
        bundle = config.verify if isinstance(config.verify, str) else session.get_config_variable("ca_bundle")
    credentials: Any = None
    if not config.unsigned:
        credentials = session.get_credentials()
        if credentials is None:
            return None  # boto3 raises its own, well-translated error on the first request

    from obstore.store import S3Store

    region = client.meta.region_name or "us-east-1"
    s3: dict[str, Any] = {"region": "us-east-1" if region == "aws-global" else region}
    endpoint = config.endpoint_url or client.meta.endpoint_url
    aws = urlsplit(endpoint).netloc.lower().endswith(".amazonaws.com") and not config.endpoint_url
    # boto3's "auto": virtual-hosted on AWS, path-style on any other endpoint.
    virtual = config.addressing_style == "virtual" or (config.addressing_style == "auto" and aws)
    if virtual and "." in root.bucket and urlsplit(endpoint).scheme == "https":
        virtual = config.addressing_style == "virtual"  # a dotted bucket breaks the wildcard certificate
    if not aws:
        parts = urlsplit(endpoint)
        s3["endpoint"] = f"{parts.scheme}://{root.bucket}.{parts.netloc}" if virtual else endpoint
    s3["virtual_hosted_style_request"] = virtual
    s3["skip_signature"] = config.unsigned
    for name, value in config.extra_args.items():
        if name in _STORE_ARGS:
            s3[_STORE_ARGS[name]] = value
    options: dict[str, Any] = {
        "allow_http": endpoint.startswith("http://"),
        "connect_timeout": datetime.timedelta(seconds=config.socket_timeout),
        "timeout": datetime.timedelta(seconds=config.socket_timeout),
        "pool_max_idle_per_host": str(config.max_pool_connections * IN_FLIGHT),
    }
    if config.verify is False:
        options["allow_invalid_certificates"] = True
    elif bundle:
        with open(bundle, "rb") as f:
            options["root_certificate"] = f.read()
        _bundled.add(_Key(config, root.bucket))
    # One quick second try for a dropped connection, as with botocore; the engine
    # retries the batch with backoff and a deadline.
    retry = {"max_retries": 1, "retry_timeout": datetime.timedelta(seconds=config.socket_timeout)}
    return S3Store(
        root.bucket,
        config=s3,  # type: ignore[arg-type]
        client_options=options,  # type: ignore[arg-type]
        retry_config=retry,  # type: ignore[arg-type]
        credential_provider=None if credentials is None else _Credentials(credentials),  # type: ignore[arg-type]
    )


class _Credentials:
    """obstore's credential callback over boto3's credentials (its whole chain, refreshed by boto3)."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()  # botocore's refresh is not meant for concurrent callers

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            frozen = self._credentials.get_frozen_credentials()
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": datetime.datetime.now(datetime.timezone.utc) + _CREDENTIALS_TTL,
        }


def put_attributes(key: str, extra: dict[str, Any], digest: str | None = None) -> dict[str, str]:
    """The headers and user metadata of a PUT of ``key`` (content SHA-256 ``digest``), as boto3 sends them.

    ``put_params(key, digest)`` with ``MLFLOW_S3_UPLOAD_EXTRA_ARGS`` over it (user metadata merged
    under ours), as the boto3 client's event handler merges them.
    """
    ours = put_params(key, digest)
    params = {**ours, **{k: v for k, v in extra.items() if k not in _STORE_ARGS}}
    if isinstance(extra.get("Metadata"), dict) and isinstance(ours.get("Metadata"), dict):
        params["Metadata"] = {**extra["Metadata"], **ours["Metadata"]}
    attributes: dict[str, str] = {}
    for name, value in params.items():
        if name == "Metadata":
            attributes.update({str(k): str(v) for k, v in value.items()})
        elif name in _SIGNED:
            continue  # obstore signs the body's SHA-256 (x-amz-content-sha256), which S3 checks
        elif name in _ATTRIBUTES:
            attributes[_ATTRIBUTES[name]] = str(value)
        else:
            raise ValueError(f"put_params({key!r}) gave {name!r}, which obstore cannot send: map it in _fast")
    return attributes


def observed(root: S3Root, operation: str) -> bool:
    """Whether someone watches this root's boto3 client send ``operation`` (then boto3 sends it).

    botocore registers nothing of its own on ``before-send``; a handler there belongs to
    whoever holds the shared client (request recorders and stubs in tests, tracing or
    header-adding instrumentation), and would silently stop seeing a tree's small files
    if obstore sent them. Such a batch goes through boto3, one request after another.
    """
    emitter = getattr(root.client.meta.events, "_emitter", None)
    handlers = getattr(emitter, "_handlers", None)
    search = getattr(handlers, "prefix_search", None)
    return search is not None and bool(search(f"before-send.s3.{operation}"))


def _key(root: S3Root, path: str, name: str) -> str:
    """The key of ``name`` below ``path`` (InvalidPath for '..', absolute names...)."""
    clean = _paths.normalize(name)
    if not clean:
        raise InvalidPath(f"a batch member needs a file name below {root.uri(root.key(path))}, got {name!r}")
    return root.key(_paths.join(path, clean))


@hookimpl
def upload_batch(root: S3Root, path: str, files: Iterable[tuple[str, bytes]]) -> None:
    """PUT every ``(name below path, bytes)``, :data:`IN_FLIGHT` at a time; each object atomic."""
    import obstore

    store = store_for(root)
    assert store is not None  # batches are only offered where usable()
    extra = root.config.extra_args
    # Every name is checked (InvalidPath) before the first request goes out.
    checked = [(_key(root, path, name), data) for name, data in files]
    # Each object records its SHA-256 (issue 15), as a single PutObject does.
    digests = {key: sha256_hex(data) for key, data in checked}
    if observed(root, "PutObject") or _Key(root.config, root.bucket) in _boto3_only:
        _put_with_boto3(root, checked)
        return

    def put(key: str, data: bytes) -> Callable[[], Awaitable[Any]]:
        return lambda: obstore.put_async(
            store, key, data, attributes=put_attributes(key, extra, digests[key])
        )

    results = _run_all(root, [(key, put(key, data)) for key, data in checked])
    if _certificate_refused(root, results):
        _put_with_boto3(root, checked)
        return
    for key, outcome in results:
        if isinstance(outcome, BaseException):
            raise _translated(outcome, root, key) from outcome


def _put_with_boto3(root: S3Root, items: list[tuple[str, bytes]]) -> None:
    for key, data in items:
        with translated(root, key):
            root.client.put_object(
                Bucket=root.bucket, Key=key, Body=data, **put_params(key, sha256_hex(data))
            )


def _get_with_boto3(root: S3Root, keys: list[tuple[str, str]]) -> Iterator[tuple[str, bytes]]:
    for name, key in keys:
        with translated(root, key):
            got = root.client.get_object(Bucket=root.bucket, Key=key)
            with got["Body"] as body:
                data = body.read()
        yield name, _checked(root, key, data, got.get("Metadata", {}).get(DIGEST_KEY))


def _checked(root: S3Root, key: str, data: bytes, recorded: str | None) -> bytes:
    """``data``, unless it differs from the SHA-256 recorded with the object (then IntegrityError).

    A listing carries no digest, so a batch member is checked here, against the metadata
    its GET returned, at the cost of hashing a small body (microseconds).
    """
    if recorded is not None:
        received = sha256_hex(data)
        if received != recorded.lower():
            raise mismatch(root.uri(key), recorded, received, "the s3 backend recorded")
    return data


def _certificate_refused(root: S3Root, results: list[tuple[str, Any]]) -> bool:
    """Whether obstore refused the certificate of an endpoint given a CA bundle (then: boto3 only)."""
    key = _Key(root.config, root.bucket)
    if key in _bundled and any(isinstance(o, BaseException) and is_tls_failure(o) for _, o in results):
        _boto3_only.add(key)
        return True
    return False


@hookimpl
def download_batch(root: S3Root, path: str, names: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """GET every name below ``path``, :data:`IN_FLIGHT` at a time.

    What arrived is handed back even when another GET failed (the engine then asks
    again only for the rest); the first failure is raised after it.
    """
    import obstore

    store = store_for(root)
    assert store is not None
    keys = [(name, _key(root, path, name)) for name in names]
    by_key = {key: name for name, key in keys}
    if observed(root, "GetObject") or _Key(root.config, root.bucket) in _boto3_only:
        yield from _get_with_boto3(root, keys)
        return

    def get(key: str) -> Callable[[], Awaitable[bytes]]:
        async def run() -> bytes:
            result = await obstore.get_async(store, key)
            # The body of a small object has arrived with its headers, or nearly: collecting
            # it without a second await saves a wake-up of this loop from obstore's threads
            # per file (measured: 1,000 files of 10 KiB, ~240 ms of CPU against ~300).
            recorded = result.attributes.get(DIGEST_KEY)
            return _checked(root, key, bytes(result.bytes()), recorded if isinstance(recorded, str) else None)

        return run

    results = _run_all(root, [(key, get(key)) for _, key in keys])
    if _certificate_refused(root, results):
        yield from _get_with_boto3(root, keys)
        return
    failure: tuple[str, BaseException] | None = None
    for key, outcome in results:
        if isinstance(outcome, BaseException):
            failure = failure or (key, outcome)
        else:
            yield by_key[key], outcome
    if failure is not None:
        raise _translated(failure[1], root, failure[0]) from failure[1]


def _translated(exc: BaseException, root: S3Root, key: str) -> BaseException:
    if isinstance(exc, (ArtifactError, asyncio.CancelledError)):
        return exc
    return translate_obstore(exc, root, key)


def _run_all(
    root: S3Root, calls: list[tuple[str, Callable[[], Awaitable[T]]]]
) -> list[tuple[str, T | BaseException]]:
    """Run the calls on a fresh event loop, IN_FLIGHT at a time; every outcome, in order."""
    deadline = time_left()

    async def main() -> list[T | BaseException]:
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def one(call: Callable[[], Awaitable[T]]) -> T:
            async with slots:
                return await call()

        tasks = [asyncio.ensure_future(one(call)) for _, call in calls]
        done = asyncio.gather(*tasks, return_exceptions=True)
        try:
            return await asyncio.wait_for(done, deadline) if deadline is not None else await done
        except asyncio.TimeoutError:
            raise OperationTimeout(
                f"{len(calls)} requests to {root.uri()} did not finish in {deadline:.0f} s "
                f"(endpoint {root.endpoint})"
            ) from None

    outcomes = asyncio.run(main())
    return [(key, outcome) for (key, _), outcome in zip(calls, outcomes, strict=True)]
