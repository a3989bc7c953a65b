"""What object-store plugins share: a root is a key prefix inside a bucket (or container).

``s3://bucket/a/b`` is the prefix ``a/b``: the artifact ``x/y`` is the key ``a/b/x/y``,
and a key listed below the root maps back to ``x/y``. A root's dataclass inherits
:class:`KeyPrefix` and declares ``prefix``::

    @dataclass(frozen=True)
    class S3Root(KeyPrefix):
        bucket: str
        prefix: str
"""

from __future__ import annotations

__all__ = ["KeyPrefix"]


class KeyPrefix:
    """Maps artifact paths to object keys under ``prefix`` ('' for the whole bucket), and back."""

    prefix: str

    def key(self, path: str) -> str:
        """The object key of ``path`` (a clean relative path; '' is the root itself)."""
        if not path:
            return self.prefix
        return f"{self.prefix}/{path}" if self.prefix else path

    def rel(self, key: str) -> str:
        """The path, relative to the root, of a key at or below it."""
        if not self.prefix:
            return key
        return key[len(self.prefix) + 1 :] if len(key) > len(self.prefix) else ""
