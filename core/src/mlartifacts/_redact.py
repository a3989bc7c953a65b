"""Secrets kept out of messages: passwords in URIs and the signatures of presigned URLs."""

from __future__ import annotations

import re

__all__ = ["redact_signatures", "redact_uri"]


def redact_uri(uri: str) -> str:
    """``uri`` with any password in it (``sftp://user:secret@host``) replaced by ``***``."""
    scheme, sep, rest = uri.partition("://")
    authority = rest.split("/", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return uri
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{rest[len(userinfo) + 1 :]}"


#: Query parameters that make a presigned URL a credential: AWS SigV4 and SigV2,
#: Google Cloud Storage V4, Azure SAS.
_SIGNED = re.compile(
    r"([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId"
    r"|X-Goog-Signature|X-Goog-Credential|sig)=)[^&\s'\")]+",
    re.IGNORECASE,
)


def redact_signatures(text: str) -> str:
    """``text`` with the signatures and credentials of any presigned URL in it replaced by ``***``.

    The rest of the URL (bucket, key, expiry) stays, so a message still says where.
    """
    return _SIGNED.sub(r"\1***", text)
