"""Artifact path normalization: the single gate every path passes."""

from __future__ import annotations

import pytest

from mlartifacts import paths
from mlartifacts.errors import InvalidPath


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, ""),
        ("", ""),
        (".", ""),
        ("a", "a"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("a//b/", "a/b"),
        ("./a/./b", "a/b"),
        ("with space/ünïcode 模型.txt", "with space/ünïcode 模型.txt"),
        ("a..b/c..", "a..b/c.."),  # dots inside names are fine
        ("#hash?query", "#hash?query"),  # literal characters in the core API
    ],
)
def test_normalize_accepts(raw: str | None, clean: str) -> None:
    assert paths.normalize(raw) == clean


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("..", "'..'"),
        ("a/../../b", "'..'"),
        ("a/..", "'..'"),
        ("/etc/passwd", "relative"),
        ("//server/share", "relative"),
        ("C:/x", "relative"),
        ("c:relative", "relative"),
        ("a\\b", "backslash"),
        ("a\x00b", "control"),
        ("tab\there", "control"),
        ("del\x7f", "control"),
        (f"d/{paths.TEMP_PREFIX}x", "reserved"),
    ],
)
def test_normalize_refuses(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPath, match=reason):
        paths.normalize(raw)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidPath, match="string"):
        paths.normalize(b"bytes")  # type: ignore[arg-type]


def test_join_and_local_join(tmp_path: object) -> None:
    assert paths.join("a", None, "", "b/c") == "a/b/c"
    with pytest.raises(InvalidPath):
        paths.join("a", "../..")
    assert paths.local_join("/tmp/x", "a/b") == "/tmp/x/a/b"
    assert paths.local_join("/tmp/x", "") == "/tmp/x"
    with pytest.raises(InvalidPath):
        paths.local_join("/tmp/x", "../../etc/passwd")  # a hostile listing cannot escape
