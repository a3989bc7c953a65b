"""Settings, read from the environment in one place into typed values.

MLflow's variables keep their names and meanings; mlartifacts' own knobs use the
``MLARTIFACTS_`` prefix. An invalid value is a :class:`ConfigError` that names the
variable. Plugins read their own variables with the same helpers
(:func:`env_bool`, :func:`env_bytes`, :func:`env_json_object`...).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from ._types import MiB
from .errors import ConfigError

__all__ = [
    "Settings",
    "default_state_dir",
    "env_bool",
    "env_bytes",
    "env_float",
    "env_int",
    "env_json_object",
    "env_list",
    "env_str",
    "parse_bytes",
    "storage_tls_verify",
]

Environ = Mapping[str, str]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def _env(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


def env_str(name: str, default: str | None = None, environ: Environ | None = None) -> str | None:
    """The variable's value, or ``default`` when unset or empty."""
    value = _env(environ).get(name)
    return value if value else default


def env_bool(name: str, default: bool, environ: Environ | None = None) -> bool:
    """A boolean variable: true/false, 1/0, yes/no, on/off (any case)."""
    value = _env(environ).get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int, environ: Environ | None = None, *, minimum: int | None = None) -> int:
    """An integer variable, optionally with a lower bound."""
    value = _env(environ).get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float | None, environ: Environ | None = None) -> float | None:
    """A floating-point variable."""
    value = _env(environ).get(name)
    if value is None or not value.strip():
        return default
    try:
        return float(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def parse_bytes(text: str) -> int:
    """Parse ``"8388608"``, ``"8MiB"``, ``"8 MB"``, ``"1.5GiB"`` into a byte count."""
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def env_bytes(name: str, default: int, environ: Environ | None = None, *, minimum: int = 1) -> int:
    """A size variable in bytes; accepts unit suffixes (KiB, MiB, GiB, KB, MB, GB)."""
    value = _env(environ).get(name)
    if value is None or not value.strip():
        return default
    try:
        size = parse_bytes(value)
    except ValueError:
        raise ConfigError(f"{name} must be a size in bytes such as 8388608 or 8MiB, got {value!r}") from None
    if size < minimum:
        raise ConfigError(f"{name} must be at least {minimum} bytes, got {value!r}")
    return size


def env_json_object(name: str, environ: Environ | None = None) -> dict[str, Any]:
    """A JSON object variable ({} when unset)."""
    value = _env(environ).get(name)
    if value is None or not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON ({exc.msg} at char {exc.pos}): {value!r}") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f'{name} must be a JSON object such as {{"Key": "value"}}, got {value!r}')
    return parsed


def env_list(name: str, environ: Environ | None = None) -> list[str] | None:
    """A comma-separated list, or None when unset."""
    value = _env(environ).get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def storage_tls_verify(environ: Environ | None = None) -> bool | str | None:
    """How to check object storage's TLS certificate, from MLflow's and boto3's variables.

    ``False`` with ``MLFLOW_S3_IGNORE_TLS=true``, the path in ``AWS_CA_BUNDLE``, else
    None (the default trust store). Setting both is refused, as MLflow's docs say.
    The S3 backend uses it for its endpoint, the service client for presigned URLs.
    """
    ignore = env_bool("MLFLOW_S3_IGNORE_TLS", False, environ)
    bundle = env_str("AWS_CA_BUNDLE", None, environ)
    if ignore and bundle:
        raise ConfigError(
            "MLFLOW_S3_IGNORE_TLS and AWS_CA_BUNDLE are both set: set one, not both "
            "(AWS_CA_BUNDLE to verify the endpoint with your CA, "
            "MLFLOW_S3_IGNORE_TLS=true to skip verification)"
        )
    if ignore:
        return False
    if bundle:
        if not os.path.isfile(bundle):
            raise ConfigError(f"AWS_CA_BUNDLE names {bundle!r}, which is not a file")
        return bundle
    return None


def _timeout(environ: Environ | None) -> float | None:
    name = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
    value = _env(environ).get(name)
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = float("nan")
    if seconds == -1:
        return None
    if not seconds > 0:  # also catches NaN
        raise ConfigError(f"{name} must be a positive number of seconds or -1 (no timeout), got {value!r}")
    return seconds


@dataclass(frozen=True)
class Settings:
    """Knobs of the transfer engine. ``Settings.from_env()`` reads them from the environment.

    Attributes:
        timeout: seconds one operation (a file transfer, a call, a stream) may take, retries
            included, enforced by the engine whatever the SDK does; None for no limit
            (``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``, ``-1`` meaning none).
        max_workers: files, parts and ranges in flight at once (``MLARTIFACTS_MAX_WORKERS``).
        multipart_threshold: files at least this large use multipart upload where the
            backend has it (``MLARTIFACTS_MULTIPART_THRESHOLD``).
        multipart_chunksize: preferred part size, adjusted to the backend's limits
            (``MLARTIFACTS_MULTIPART_CHUNKSIZE``).
        ranged_download_threshold: objects at least this large are downloaded as parallel
            ranges where the backend reads ranges (``MLARTIFACTS_RANGED_DOWNLOAD_THRESHOLD``).
        ranged_download_chunksize: size of each range (``MLARTIFACTS_RANGED_DOWNLOAD_CHUNKSIZE``).
        part_memory: bytes of one file's multipart upload held in memory at once: its
            parts in flight are this divided by the part size, at least one and at most
            ``max_workers`` (``MLARTIFACTS_PART_MEMORY``). Parts are read whole before
            they are sent, so this bounds a large upload's memory.
        stream_parts_in_flight: parts of one stream of unknown length (a server PUT,
            ``ArtifactStore.write``) buffered or uploading at once; bounds its memory to
            about this many parts plus one (``MLARTIFACTS_STREAM_PARTS_IN_FLIGHT``).
        batch_file_size: files up to this size move in batches where the backend has
            them (``MLARTIFACTS_BATCH_FILE_SIZE``, at most 16 MiB; 0 turns batches off).
        batch_files: most files in one batch (``MLARTIFACTS_BATCH_FILES``); trees with
            fewer small files are split so that every batch slot gets one.
        batches_in_flight: batches moving at once (``MLARTIFACTS_BATCHES_IN_FLIGHT``, at
            most ``max_workers``). Each carries many files, so a few hide the latency;
            more mostly make the two ends' threads contend.
        max_retries: retries after the first attempt of a transient failure
            (``MLARTIFACTS_MAX_RETRIES``).
        retry_backoff: first backoff in seconds, doubled each retry, with full jitter
            (``MLARTIFACTS_RETRY_BACKOFF``).
        retry_backoff_max: longest single backoff (``MLARTIFACTS_RETRY_BACKOFF_MAX``).
        digests: the engine computes each uploaded file's SHA-256 (recorded with it) and
            checks downloads against the recorded one (``MLARTIFACTS_DIGESTS``, default
            true). Off: uploads record no digest, downloads are checked by size and the
            backend's native checksum only. Bytes a writer announces a digest for are
            checked either way.
        progress_bar: the CLI draws progress bars on a terminal
            (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``).
        resume: interrupted multipart uploads and ranged downloads keep what they
            transferred, recorded in a journal, and the same transfer run again sends
            only what is missing (``MLARTIFACTS_RESUME``; false: abort on failure).
        state_dir: where those journals live; None: :func:`default_state_dir`
            (``MLARTIFACTS_STATE_DIR``).
        resume_max_age: seconds after which a journal is too old to resume (its upload
            is aborted and the transfer starts over); a backend's shorter retention of
            incomplete uploads wins (``MLARTIFACTS_RESUME_MAX_AGE``, default 7 days).
    """

    timeout: float | None = None
    max_workers: int = 10
    multipart_threshold: int = 16 * MiB
    multipart_chunksize: int = 8 * MiB  # as s3transfer: more parts keep 10 workers busy
    ranged_download_threshold: int = 32 * MiB
    ranged_download_chunksize: int = 16 * MiB
    part_memory: int = 48 * MiB
    stream_parts_in_flight: int = 4
    batch_file_size: int = 1 * MiB
    batch_files: int = 100
    batches_in_flight: int = 4
    max_retries: int = 5
    retry_backoff: float = 0.5
    retry_backoff_max: float = 20.0
    digests: bool = True
    progress_bar: bool = True
    resume: bool = True
    state_dir: str | None = None
    resume_max_age: float = 7 * 86400.0

    @classmethod
    def from_env(cls, environ: Environ | None = None) -> Settings:
        """Read every setting from ``environ`` (default: ``os.environ``)."""
        d = cls()
        return cls(
            timeout=_timeout(environ),
            max_workers=env_int("MLARTIFACTS_MAX_WORKERS", d.max_workers, environ, minimum=1),
            multipart_threshold=env_bytes("MLARTIFACTS_MULTIPART_THRESHOLD", d.multipart_threshold, environ),
            multipart_chunksize=env_bytes("MLARTIFACTS_MULTIPART_CHUNKSIZE", d.multipart_chunksize, environ),
            ranged_download_threshold=env_bytes(
                "MLARTIFACTS_RANGED_DOWNLOAD_THRESHOLD", d.ranged_download_threshold, environ
            ),
            ranged_download_chunksize=env_bytes(
                "MLARTIFACTS_RANGED_DOWNLOAD_CHUNKSIZE", d.ranged_download_chunksize, environ
            ),
            part_memory=env_bytes("MLARTIFACTS_PART_MEMORY", d.part_memory, environ),
            stream_parts_in_flight=env_int(
                "MLARTIFACTS_STREAM_PARTS_IN_FLIGHT", d.stream_parts_in_flight, environ, minimum=1
            ),
            batch_file_size=_batch_file_size(environ),
            batch_files=env_int("MLARTIFACTS_BATCH_FILES", d.batch_files, environ, minimum=1),
            batches_in_flight=env_int(
                "MLARTIFACTS_BATCHES_IN_FLIGHT", d.batches_in_flight, environ, minimum=1
            ),
            max_retries=env_int("MLARTIFACTS_MAX_RETRIES", d.max_retries, environ, minimum=0),
            retry_backoff=_non_negative("MLARTIFACTS_RETRY_BACKOFF", d.retry_backoff, environ),
            retry_backoff_max=_non_negative("MLARTIFACTS_RETRY_BACKOFF_MAX", d.retry_backoff_max, environ),
            digests=env_bool("MLARTIFACTS_DIGESTS", d.digests, environ),
            progress_bar=env_bool("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", d.progress_bar, environ),
            resume=env_bool("MLARTIFACTS_RESUME", d.resume, environ),
            state_dir=env_str("MLARTIFACTS_STATE_DIR", None, environ),
            resume_max_age=_non_negative("MLARTIFACTS_RESUME_MAX_AGE", d.resume_max_age, environ),
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def default_state_dir(environ: Environ | None = None) -> str:
    """Where transfer journals live when ``Settings.state_dir`` is None.

    ``MLARTIFACTS_STATE_DIR`` if set, else ``mlartifacts/transfers`` in the user's
    cache directory (``XDG_CACHE_HOME``, default ``~/.cache``; ``%LOCALAPPDATA%`` on
    Windows), where a lost journal costs only a restarted transfer.
    """
    explicit = env_str("MLARTIFACTS_STATE_DIR", None, environ)
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    if os.name == "nt":
        base = env_str("LOCALAPPDATA", None, environ) or os.path.expanduser(r"~\AppData\Local")
        return os.path.join(base, "mlartifacts", "Cache", "transfers")
    cache = env_str("XDG_CACHE_HOME", None, environ)
    if not cache or not os.path.isabs(cache):  # the XDG spec says to ignore a relative path
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "mlartifacts", "transfers")


#: The largest file a batch carries: batches hold one file at a time in memory.
MAX_BATCH_FILE_SIZE = 16 * MiB


def _batch_file_size(environ: Environ | None) -> int:
    value = env_bytes("MLARTIFACTS_BATCH_FILE_SIZE", 1 * MiB, environ, minimum=0)
    if not 0 <= value <= MAX_BATCH_FILE_SIZE:
        raise ConfigError(f"MLARTIFACTS_BATCH_FILE_SIZE must be between 0 and 16MiB, got {value}")
    return value


def _non_negative(name: str, default: float, environ: Environ | None) -> float:
    value = env_float(name, default, environ)
    assert value is not None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value
