"""Passwords written in URIs and presigned URLs' signatures never reach messages or reprs."""

from __future__ import annotations

import pytest

from mlartifacts import ArtifactStore, PluginRegistry
from mlartifacts._redact import redact_signatures, redact_uri
from mlartifacts.testing import memory


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("sftp://user:s3cret@host/path", "sftp://user:***@host/path"),
        ("ftp://u:p%40ss@h:21/a/b", "ftp://u:***@h:21/a/b"),
        ("ftp://u:p@ss@h/x", "ftp://u:***@h/x"),  # an unencoded '@' in the password
        ("sftp://user@host/path", "sftp://user@host/path"),
        ("s3://bucket/key:with@signs", "s3://bucket/key:with@signs"),
        ("/local/path:x@y", "/local/path:x@y"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


def test_core_messages_hide_the_password() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(memory.plugin, "memory")
    store = ArtifactStore("memory://user:s3cret@bucket/prefix", registry=registry)
    assert store.backend.where("a/b.txt") == "memory://user:***@bucket/prefix/a/b.txt"
    assert "s3cret" not in repr(store)
    assert "s3cret" not in repr(store.backend)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "url: /b/k.bin?uploadId=u1&partNumber=2&X-Amz-Credential=key%2F2026&X-Amz-Signature=ab12 (Caused",
            "url: /b/k.bin?uploadId=u1&partNumber=2&X-Amz-Credential=***&X-Amz-Signature=*** (Caused",
        ),
        (
            "https://h/b/k?AWSAccessKeyId=AK&Signature=zz%3D&Expires=1",
            "https://h/b/k?AWSAccessKeyId=***&Signature=***&Expires=1",
        ),
        ("https://acct.blob/c/b?sv=2024&sig=abc%2B&se=x", "https://acct.blob/c/b?sv=2024&sig=***&se=x"),
        ("'https://g/b/o?X-Goog-Signature=0f'", "'https://g/b/o?X-Goog-Signature=***'"),
        ("GET /artifacts/a?path=sig=1", "GET /artifacts/a?path=sig=1"),  # not a parameter of its own
    ],
)
def test_presigned_signatures_are_redacted(text: str, shown: str) -> None:
    assert redact_signatures(text) == shown
