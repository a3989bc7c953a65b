"""Tree deletes on fake-gcs-server: objects deleted concurrently, while the listing goes on.

GCS deletes one object per request. Its JSON batch endpoint would take many per
request, but fake-gcs-server cannot serve it (it answers "not multi-part" and
deletes nothing), so the plugin sends bounded concurrent requests instead; the
batch path is not used, having no server here to prove it on.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import mlartifacts_gcs._objects as objects
from mlartifacts import ArtifactStore
from mlartifacts.errors import NotFound, PermissionDenied


def _tree(store: ArtifactStore, n: int) -> None:
    for i in range(n):
        store.write_bytes(f"tree/d{i % 7}/f{i:04d}.txt", b"x")
    store.write_bytes("treehouse.txt", b"not below tree/")


class InFlight:
    """Counts the DELETE requests in flight at once on the store's session."""

    def __init__(self, store: ArtifactStore, fail_on: str | None = None) -> None:
        self.session = store.backend.root.client.session
        self.original = self.session.request
        self.now = self.peak = self.sent = 0
        self.lock = threading.Lock()
        self.fail_on = fail_on

    def __enter__(self) -> InFlight:
        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if method != "DELETE":
                return self.original(method, url, *args, **kwargs)
            with self.lock:
                self.now += 1
                self.sent += 1
                self.peak = max(self.peak, self.now)
            try:
                if self.fail_on is not None and self.fail_on in url:
                    from google.api_core.exceptions import Forbidden

                    raise Forbidden("refused by the test")
                time.sleep(0.005)  # a request takes some time on a real network
                return self.original(method, url, *args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1

        self.session.request = request
        return self

    def __exit__(self, *exc: object) -> None:
        del self.session.request


def test_a_tree_is_deleted_concurrently(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        _tree(store, 120)
        with InFlight(store) as seen:
            store.delete("tree")
        assert seen.sent == 120
        assert 1 < seen.peak <= objects.DELETE_CONCURRENCY
        assert [f.path for f in store.list_artifacts()] == ["treehouse.txt"]
        with pytest.raises(NotFound):
            store.delete("tree")


def test_a_refused_delete_fails_the_tree_delete(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        _tree(store, 40)
        refused = pytest.raises(PermissionDenied, match="f0013")
        with InFlight(store, fail_on="f0013"), refused as caught:
            store.delete("tree")
        assert caught.value.__cause__ is not None  # raised from the SDK's error
        assert "tree/d6/f0013.txt" in {f.path for f in store.iter_files("tree")}
