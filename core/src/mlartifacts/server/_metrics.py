"""Prometheus metrics for ``--expose-prometheus DIR``, shared by every worker process through DIR.

prometheus-client's multi-process mode: each worker writes its samples to files
in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` (answered by any worker) adds
them up. The variable must be set before prometheus-client is first imported, so
:func:`prepare_directory` runs in the parent before workers start, and
:class:`Metrics` imports the library only when metrics are on.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from ..errors import ConfigError

__all__ = ["Metrics", "prepare_directory"]

_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: from a small listing to a multi-GiB transfer.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: Routes that move artifact bytes, by method: their requests count as transfers in flight.
_TRANSFERS = {
    ("GET", "/mlflow-artifacts/artifacts/{path:anypath}"): "download",
    ("HEAD", "/mlflow-artifacts/artifacts/{path:anypath}"): "download",
    ("POST", "/mlflow-artifacts/batch/download/{path:anypath}"): "download",
    ("GET", "/mlflow-artifacts/archive/{path:anypath}"): "download",
    ("PUT", "/mlflow-artifacts/artifacts/{path:anypath}"): "upload",
    ("POST", "/mlflow-artifacts/batch/upload/{path:anypath}"): "upload",
}


def prepare_directory(directory: str) -> None:
    """Create ``directory``, clear what an earlier run left there, and point prometheus-client at it.

    Old sample files would otherwise add a dead server's counts to the new one's.
    """
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    except OSError as exc:
        raise ConfigError(f"--expose-prometheus: cannot use {directory!r} for metrics: {exc}") from exc
    os.environ[_ENV] = str(path.resolve())


class Metrics:
    """The service's counters, histograms and gauges, in multi-process mode."""

    def __init__(self, directory: str) -> None:
        os.environ.setdefault(_ENV, str(Path(directory).resolve()))
        import prometheus_client as prom

        self._prom = prom
        labels = ("method", "route")
        self.requests = prom.Counter(
            "mlartifacts_http_requests", "HTTP requests answered, by route template and status",
            [*labels, "status"], registry=None,
        )  # fmt: skip
        self.duration = prom.Histogram(
            "mlartifacts_http_request_duration_seconds", "Time from request to the last byte of the answer",
            labels, buckets=_BUCKETS, registry=None,
        )  # fmt: skip
        self.received = prom.Counter(
            "mlartifacts_http_request_bytes", "Bytes of request bodies received", labels, registry=None
        )
        self.sent = prom.Counter(
            "mlartifacts_http_response_bytes", "Bytes of response bodies sent", labels, registry=None
        )
        self.in_flight = prom.Gauge(
            "mlartifacts_transfers_in_flight", "Uploads and downloads of artifacts in progress",
            ["direction"], multiprocess_mode="livesum", registry=None,
        )  # fmt: skip
        self.storage_errors = prom.Counter(
            "mlartifacts_storage_errors",
            "Errors from the artifacts destination, by error class",
            ["kind"],
            registry=None,
        )

    def request(self, method: str, route: str, status: int, seconds: float, received: int, sent: int) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)
        if received:
            self.received.labels(method, route).inc(received)
        if sent:
            self.sent.labels(method, route).inc(sent)

    def transfer(self, method: str, route: str) -> contextlib.AbstractContextManager[Any] | None:
        """Counts the request as a transfer in flight while it runs, if its route moves artifacts."""
        api = route.split("/mlflow-artifacts/", 1)
        direction = _TRANSFERS.get((method, "/mlflow-artifacts/" + api[1])) if len(api) == 2 else None
        if direction is None:
            return None
        return self._in_flight(direction)

    @contextlib.contextmanager
    def _in_flight(self, direction: str) -> Iterator[None]:
        gauge = self.in_flight.labels(direction)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def storage_error(self, exc: BaseException) -> None:
        self.storage_errors.labels(type(exc).__name__).inc()

    def process_exit(self) -> None:
        """Drop this worker's live gauges (its in-flight counts) from the shared directory."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def endpoint(self, request: Request) -> Response:
        """``/metrics``: every worker's samples, added up, in Prometheus' text format."""
        from prometheus_client import multiprocess

        def collect() -> bytes:
            registry = self._prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(self._prom.generate_latest(registry))

        body = await anyio.to_thread.run_sync(collect)  # reads every worker's files
        return Response(body, media_type=self._prom.CONTENT_TYPE_LATEST)
