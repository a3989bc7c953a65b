"""Credentials, for real: Application Default Credentials from a service-account key whose token
endpoint runs in this session (it checks every JWT's signature), and the failures users meet.

fake-gcs-server accepts any token, so what is proven is that the plugin obtains a token
the right way and sends requests with it; that GCS would accept the token is not.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mlartifacts import ArtifactStore, Part
from mlartifacts.errors import NotSupported, Unauthenticated

KiB = 1024


def test_service_account_key_obtains_a_token_and_works(service_account: Any, unique_uri: str) -> None:
    issued = len(service_account.tokens)
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("a/b.txt", b"hello")
        assert store.read_bytes("a/b.txt") == b"hello"
        assert [f.path for f in store.list_artifacts("a")] == ["a/b.txt"]
        client = store.backend.root.client
        assert not client.anonymous
        # The token in use is one the endpoint issued after verifying the key's signature.
        assert len(service_account.tokens) > issued
        assert client.credentials.token in service_account.tokens


def test_a_key_the_token_endpoint_rejects(wrong_key_account: Any, unique_uri: str) -> None:
    rejected = wrong_key_account.rejected
    with ArtifactStore(unique_uri) as store, pytest.raises(Unauthenticated, match="access token"):
        store.write_bytes("a.txt", b"a")
    assert wrong_key_account.rejected > rejected


def test_no_credentials_at_all(google_env: pytest.MonkeyPatch) -> None:
    # No emulator, no key, an empty gcloud configuration, the metadata server unreachable.
    with pytest.raises(Unauthenticated) as caught:
        ArtifactStore("gs://some-bucket/artifacts")
    message = str(caught.value)
    for hint in ("GOOGLE_APPLICATION_CREDENTIALS", "gcloud auth application-default login",
                 "metadata server", "MLARTIFACTS_GCS_ANONYMOUS"):  # fmt: skip
        assert hint in message


def test_a_missing_key_file(google_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    google_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nowhere.json"))
    with pytest.raises(Unauthenticated, match=r"nowhere\.json"):
        ArtifactStore("gs://some-bucket/artifacts")


def test_anonymous_only_when_asked(google_env: pytest.MonkeyPatch) -> None:
    google_env.setenv("MLARTIFACTS_GCS_ANONYMOUS", "true")
    with ArtifactStore("gs://public-bucket/x") as store:  # no credential is looked for
        assert store.backend.root.client.anonymous


def test_anonymous_opt_in_wins_over_a_key(
    service_account: Any, unique_uri: str, google_env: pytest.MonkeyPatch
) -> None:
    issued = len(service_account.tokens)
    google_env.setenv("MLARTIFACTS_GCS_ANONYMOUS", "true")
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("a.txt", b"a")
        assert store.backend.root.client.anonymous
    assert len(service_account.tokens) == issued  # no token was asked for


def test_emulator_is_anonymous_without_a_key(unique_uri: str) -> None:
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("a.txt", b"a")
        assert store.backend.root.client.anonymous
        with pytest.raises(NotSupported, match="does not support presign"):
            store.backend.presign("a.txt", "GET", 60)


def test_user_credentials_cannot_presign(
    gcs_env: Any, token_server: Any, google_env: pytest.MonkeyPatch, user_key: Path, unique_uri: str
) -> None:
    google_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(user_key))
    with ArtifactStore(unique_uri) as store:
        assert not store.backend.root.client.anonymous
        with pytest.raises(NotSupported, match="does not support presign"):
            store.backend.presign("a.txt", "GET", 60)
        with pytest.raises(NotSupported, match="does not support presign"):
            store.backend.presign("a.txt", "PUT", 60, store.backend.create_multipart("a.txt"), 1)


def test_federated_user_credentials_work_but_cannot_presign(
    gcs_env: Any, token_server: Any, google_env: pytest.MonkeyPatch, federated_user: Path, unique_uri: str
) -> None:
    google_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(federated_user))
    with ArtifactStore(unique_uri) as store:
        store.write_bytes("a.txt", b"a")
        assert store.backend.root.client.credentials.token in token_server.tokens
        with pytest.raises(NotSupported, match="does not support presign"):
            store.backend.presign("a.txt", "GET", 60)


def test_signed_part_urls_carry_a_composite_upload(
    service_account: Any, unique_uri: str, gcs_env: Any
) -> None:
    """The proxied multipart path: parts PUT to V4-signed URLs with plain HTTP, then compose."""
    parts = [b"a" * (256 * KiB), b"b" * (256 * KiB), b"tail"]
    with ArtifactStore(unique_uri) as store:
        backend = store.backend
        upload_id = backend.create_multipart("dir/model.bin")
        done = []
        for number, data in enumerate(parts, start=1):
            signed = backend.presign("dir/model.bin", "PUT", 600, upload_id, number)
            assert signed.url.startswith(gcs_env.url) and "X-Goog-Algorithm=GOOG4-RSA-SHA256" in signed.url
            request = urllib.request.Request(
                signed.url, data=data, method="PUT", headers=dict(signed.headers)
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                # Real GCS answers with the part's MD5 as ETag, fake-gcs-server with none;
                # MLflow's client then sends "" (complete composes the parts by name).
                done.append(Part(number, (response.headers.get("ETag") or "").strip('"'), signed.url))
        backend.complete_multipart("dir/model.bin", upload_id, done)
        assert store.read_bytes("dir/model.bin") == b"".join(parts)
        prefix = unique_uri.split("/", 3)[3]
        assert gcs_env.names(prefix=prefix) == [f"{prefix}/dir/model.bin"]
