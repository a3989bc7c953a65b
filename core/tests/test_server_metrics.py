"""The operator's view: ``--expose-prometheus`` (``/metrics``, across workers) and JSON access logs.

Both run the real CLI in a subprocess; the metrics one with two uvicorn workers,
so ``/metrics`` must add up what both recorded.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import API, RunningServer, start_cli_server

ARTIFACT_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/{path:anypath}"


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("metrics")
    (tmp / "prom").mkdir()
    (tmp / "prom" / "counter_999999.db").write_bytes(b"left over by an earlier run")
    proc = start_cli_server(tmp, "--workers", "2", "--expose-prometheus", str(tmp / "prom"))
    try:
        yield RunningServer(f"http://127.0.0.1:{proc.port}", tmp / "artifacts", proc)  # type: ignore[attr-defined]
    finally:
        proc.stop()


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_add_up_across_workers_by_route_template(metered: RunningServer) -> None:
    run = f"1/{uuid.uuid4().hex}"
    before = _samples(metered.url)
    count = 20
    for i in range(count):
        # A new connection each time: uvicorn's workers share the socket, so both get some.
        assert requests.put(f"{metered.artifacts}/{run}/f{i}.bin", data=b"x" * 1000, timeout=10).ok
        assert requests.get(f"{metered.artifacts}/{run}/f{i}.bin", timeout=10).content == b"x" * 1000
    assert requests.get(f"{metered.artifacts}/{run}/missing", timeout=10).status_code == 404
    after = _samples(metered.url)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("mlartifacts_http_requests_total", method="PUT", route=ARTIFACT_ROUTE, status="200") == count
    assert grew("mlartifacts_http_requests_total", method="GET", route=ARTIFACT_ROUTE, status="200") == count
    assert grew("mlartifacts_http_requests_total", method="GET", route=ARTIFACT_ROUTE, status="404") == 1
    assert grew("mlartifacts_http_request_bytes_total", method="PUT", route=ARTIFACT_ROUTE) == count * 1000
    assert grew("mlartifacts_http_response_bytes_total", method="GET", route=ARTIFACT_ROUTE) >= count * 1000
    assert (
        grew("mlartifacts_http_request_duration_seconds_count", method="PUT", route=ARTIFACT_ROUTE) == count
    )
    assert grew("mlartifacts_storage_errors_total", kind="NotFound") == 1
    # No raw path ever becomes a label value: one series per route, however many files.
    assert not any(run in value for _, labels in after for _, value in labels)
    assert _value(after, "mlartifacts_transfers_in_flight", direction="download") == 0
    # The stale file from "an earlier run" was cleared, not added in.
    assert not (metered.destination.parent / "prom" / "counter_999999.db").exists()  # type: ignore[union-attr]


def test_unknown_paths_share_one_label(metered: RunningServer) -> None:
    for _ in range(3):
        requests.get(f"{metered.url}/no/such/{uuid.uuid4().hex}", timeout=10)
    samples = _samples(metered.url)
    assert (
        _value(samples, "mlartifacts_http_requests_total", method="GET", route="<unmatched>", status="404")
        >= 3
    )


def test_health_and_metrics_are_plain_when_not_exposed(server: RunningServer) -> None:
    assert requests.get(f"{server.url}/health", timeout=10).text == "OK"
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404


def test_json_access_log_has_one_object_per_request(tmp_path: Path) -> None:
    proc = start_cli_server(tmp_path, "--access-log-format", "json")
    url = f"http://127.0.0.1:{proc.port}"  # type: ignore[attr-defined]
    try:
        marker = uuid.uuid4().hex
        put = requests.put(
            f"{url}{API}/1/{marker}/a.txt", data=b"hello", headers={"X-Request-Id": marker}, timeout=10
        )
        assert put.headers["X-Request-Id"] == marker
        generated = requests.get(f"{url}{API}/1/{marker}/a.txt", timeout=10).headers["X-Request-Id"]
        deadline = time.monotonic() + 5
        while generated not in proc.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [json.loads(line) for line in proc.log.read_text().splitlines() if line.startswith("{")]
    finally:
        proc.stop()
    first = next(line for line in lines if line["request_id"] == marker)
    assert first["method"] == "PUT"
    assert first["route"] == ARTIFACT_ROUTE
    assert first["path"] == f"{API}/1/{marker}/a.txt"
    assert (first["status"], first["bytes_received"], first["user"]) == (200, 5, None)
    assert first["duration"] >= 0
    second = next(line for line in lines if line["request_id"] == generated)
    assert (second["status"], second["bytes_sent"]) == (200, 5)


def test_json_access_log_names_the_user(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("alice:wonderland\n")
    proc = start_cli_server(tmp_path, "--access-log-format", "json", "--users-file", str(tmp_path / "users"))
    url = f"http://127.0.0.1:{proc.port}"  # type: ignore[attr-defined]
    try:
        rid = requests.get(f"{url}{API}", auth=("alice", "wonderland"), timeout=10).headers["X-Request-Id"]
        deadline = time.monotonic() + 5
        while rid not in proc.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = next(json.loads(x) for x in proc.log.read_text().splitlines() if rid in x)
    finally:
        proc.stop()
    assert (line["user"], line["route"], line["status"]) == ("alice", API, 200)


def test_a_bad_access_log_format_is_refused(tmp_path: Path) -> None:
    from mlartifacts.errors import ConfigError
    from mlartifacts.server import ServerConfig

    with pytest.raises(ConfigError, match="access-log-format"):
        ServerConfig(access_log_format="xml")
