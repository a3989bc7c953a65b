"""Download verification by checksum: hashlib names and CRC32C."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from mlartifacts import Checksum, FileInfo
from mlartifacts.errors import IntegrityError
from mlartifacts.transfer._checksums import hasher, hexdigest
from mlartifacts.transfer._local import verify

# The CRC-32C check value (RFC 3720, B.4): the checksum of the ASCII digits 1-9.
CHECK_INPUT, CHECK_CRC32C = b"123456789", "e3069283"


def test_crc32c_check_value() -> None:
    pytest.importorskip("google_crc32c", reason="google-crc32c comes with the gcs plugin's SDK")
    digest = hasher("crc32c")
    assert digest is not None
    digest.update(CHECK_INPUT[:4])
    digest.update(CHECK_INPUT[4:])
    assert hexdigest(digest) == CHECK_CRC32C


@pytest.mark.parametrize("algorithm", ["md5", "sha256", "MD5"])
def test_hashlib_names(algorithm: str) -> None:
    digest = hasher(algorithm)
    assert digest is not None
    digest.update(b"abc")
    assert len(hexdigest(digest)) in (32, 64)


def test_verify_crc32c(tmp_path: Path) -> None:
    pytest.importorskip("google_crc32c", reason="google-crc32c comes with the gcs plugin's SDK")
    f = tmp_path / "f"
    f.write_bytes(CHECK_INPUT)
    verify(str(f), FileInfo("f", False, 9, checksum=Checksum("crc32c", CHECK_CRC32C.upper())), "x")
    f.write_bytes(b"123456780")  # same size, one byte changed
    with pytest.raises(IntegrityError, match="crc32c of received bytes is"):
        verify(str(f), FileInfo("f", False, 9, checksum=Checksum("crc32c", CHECK_CRC32C)), "gs://b/f")


def test_without_google_crc32c_only_the_size_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "google_crc32c", None)  # import fails as if not installed
    f = tmp_path / "f"
    f.write_bytes(b"123456780")
    with caplog.at_level(logging.DEBUG, logger="mlartifacts.transfer"):
        verify(str(f), FileInfo("f", False, 9, checksum=Checksum("crc32c", CHECK_CRC32C)), "x")
    assert "google-crc32c package is not installed" in caplog.text
    with pytest.raises(IntegrityError, match="received 9 bytes, expected 10"):
        verify(str(f), FileInfo("f", False, 10, checksum=Checksum("crc32c", CHECK_CRC32C)), "x")


def test_unknown_algorithm_is_skipped(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"data")
    verify(str(f), FileInfo("f", False, 4, checksum=Checksum("no-such-digest", "00")), "x")
    assert hasher("no-such-digest") is None
