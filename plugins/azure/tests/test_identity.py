"""DefaultAzureCredential for real, through its managed-identity route, against Azurite over HTTPS.

Azurite runs with ``--oauth basic`` and a self-signed certificate; a token
endpoint on 127.0.0.1 plays the managed identity (``IDENTITY_ENDPOINT`` /
``IDENTITY_HEADER``). Azurite checks a token's audience, issuer and expiry but
not its signature, so these tests prove the plugin's side (the chain is used,
tokens go out, refusals are clear), not Entra ID's.

User-delegation SAS: Azurite hands out user-delegation keys, but refuses SAS URLs
signed with them by azure-storage-blob >= 12.29 (the SDK signs two fields Azurite
does not know yet, Azurite issue #2412). The tests go as far as Azurite allows: the
key is obtained with the token credential, reused, and signed into well-formed URLs.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mlartifacts import ArtifactStore, Settings
from mlartifacts.errors import BackendError, Unauthenticated
from mlartifacts.testing.contract import random_bytes
from mlartifacts_azure import _multipart

MiB = 1024 * 1024
QUICK = Settings(retry_backoff=0.01, retry_backoff_max=0.05, max_retries=0)


def test_round_trip_with_a_managed_identity(identity_env: Any, tmp_path: Path) -> None:
    data = random_bytes(3 * MiB, seed=1)
    (tmp_path / "m.bin").write_bytes(data)
    before = len(identity_env.tokens.requests)
    settings = QUICK.replace(multipart_threshold=MiB, multipart_chunksize=MiB)
    with ArtifactStore(identity_env.uri(f"mi/{uuid.uuid4().hex}"), settings=settings) as store:
        assert store.backend.root.service.target.source == "DefaultAzureCredential"
        store.log_artifact(str(tmp_path / "m.bin"), "d")
        store.write_bytes("d/small.txt", b"small")
        assert sorted(f.path for f in store.iter_files()) == ["d/m.bin", "d/small.txt"]
        out = store.download_artifacts("d", str(tmp_path / "out"))
        assert (Path(out) / "m.bin").read_bytes() == data
        store.delete_artifacts("d")
        assert store.list_artifacts() == []
    asked = identity_env.tokens.requests[before:]
    assert asked and {r["resource"].rstrip("/") for r in asked} == {"https://storage.azure.com"}
    # Parts that start together may each fetch the first token; then it is reused
    # by the dozens of requests that follow (not one fetch per request).
    assert len(asked) <= settings.max_workers


@pytest.mark.parametrize("mode", ["wrong-audience", "expired"])
def test_refused_tokens_are_unauthenticated(
    identity_env: Any, clean_env: pytest.MonkeyPatch, mode: str
) -> None:
    clean_env.setenv("IDENTITY_ENDPOINT", identity_env.tokens.url(mode))
    with (
        ArtifactStore(identity_env.uri("refused"), settings=QUICK) as store,
        pytest.raises(Unauthenticated, match="DefaultAzureCredential") as raised,
    ):
        store.write_bytes("a.txt", b"a")
    assert "AuthenticationFailed" in str(raised.value)


def test_no_credential_at_all_lists_what_was_tried(identity_env: Any, clean_env: pytest.MonkeyPatch) -> None:
    # No connection string, no key, and no managed identity answering (a closed port on
    # 127.0.0.1; azure-identity retries it for about 10 s before it gives up).
    clean_env.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token")
    with (
        ArtifactStore(identity_env.uri("none"), settings=QUICK) as store,
        pytest.raises(Unauthenticated) as raised,
    ):
        store.write_bytes("a.txt", b"a")
    text = str(raised.value)
    for tried in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCESS_KEY", "DefaultAzureCredential"):
        assert tried in text


def test_user_delegation_key_is_obtained_and_reused(
    identity_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_multipart, "_delegation_keys", {})
    with ArtifactStore(identity_env.uri(f"ud/{uuid.uuid4().hex}")) as store:
        backend = store.backend
        assert backend.capabilities.presign
        client = backend.root.service.client
        calls = {"n": 0}
        real = client.get_user_delegation_key

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(client, "get_user_delegation_key", counting)
        upload_id = backend.create_multipart("p.bin")
        urls = [backend.presign("p.bin", "PUT", 3600, upload_id, n).url for n in (1, 2, 3)]
        get = backend.presign("p.bin", "GET", 300).url
    assert calls["n"] == 1  # one key, fetched with the token credential, signs every URL
    key = next(iter(_multipart._delegation_keys.values()))[0]
    assert key.signed_oid and key.signed_tid and key.value
    for url in [*urls, get]:
        query = parse_qs(urlsplit(url).query)
        # A user-delegation SAS: the key's object and tenant ids are signed in.
        assert query["skoid"] == [key.signed_oid] and query["sktid"] == [key.signed_tid]
        assert query["sig"]
    assert parse_qs(urlsplit(get).query)["sp"] == ["r"]
    assert parse_qs(urlsplit(urls[0]).query)["comp"] == ["block"]


# -- TLS settings, against the same HTTPS Azurite (account key) ---------------------------------


@pytest.fixture
def tls_key_env(secure_azurite: Any, clean_env: pytest.MonkeyPatch) -> Any:
    clean_env.setenv("AZURE_STORAGE_ACCESS_KEY", secure_azurite.key)
    clean_env.setenv("MLARTIFACTS_AZURE_BLOB_ENDPOINT", secure_azurite.endpoint)
    return secure_azurite


def test_untrusted_certificate_is_a_clear_permanent_error(tls_key_env: Any) -> None:
    with (
        ArtifactStore(tls_key_env.uri("tls"), settings=QUICK) as store,
        pytest.raises(BackendError, match="MLFLOW_TRACKING_SERVER_CERT_PATH"),
    ):
        store.write_bytes("a.txt", b"a")


def test_server_cert_path_trusts_the_endpoint(tls_key_env: Any, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", tls_key_env.cert)
    with ArtifactStore(tls_key_env.uri(f"tls/{uuid.uuid4().hex}"), settings=QUICK) as store:
        store.write_bytes("a.txt", b"a")
        assert store.read_bytes("a.txt") == b"a"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_tls_skips_verification(tls_key_env: Any, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    with ArtifactStore(tls_key_env.uri(f"tls/{uuid.uuid4().hex}"), settings=QUICK) as store:
        store.write_bytes("b.txt", b"b")
        assert store.read_bytes("b.txt") == b"b"
