"""The error table: what libhdfs' errnos (as pyarrow raises them) become."""

from __future__ import annotations

import errno

import pytest

from mlartifacts.errors import (
    AlreadyExists,
    ArtifactError,
    BackendError,
    InvalidPath,
    NotFound,
    PermissionDenied,
    TransientError,
)
from mlartifacts_hdfs._errors import EINTERNAL, translate

WHERE = "hdfs://nn:8020/runs/1/model.bin"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.ENOENT, NotFound),
        (errno.EACCES, PermissionDenied),
        (errno.EPERM, PermissionDenied),
        (errno.EEXIST, AlreadyExists),
        (errno.ENOTDIR, InvalidPath),
        (errno.EINVAL, InvalidPath),
        (errno.EIO, TransientError),
        (errno.ESTALE, TransientError),
        (EINTERNAL, TransientError),
        (errno.EDQUOT, BackendError),
        (errno.EXDEV, BackendError),  # not in the table: permanent
    ],
)
def test_errno_table(code: int, kind: type[ArtifactError]) -> None:
    # As pyarrow words it: the errno first, then the libhdfs call that failed.
    exc = OSError(code, f"Opening HDFS file '/x' failed. Detail: [errno {code}] whatever")
    error = translate(exc, WHERE, "download")
    assert type(error) is kind
    assert str(error).startswith(f"download {WHERE}: ")
    assert "Opening HDFS file '/x' failed" in str(error) and "Detail" not in str(error)


def test_transient_means_retry() -> None:
    assert translate(OSError(EINTERNAL, "HDFS CloseFile failed"), WHERE, "upload").transient
    assert not translate(OSError(errno.ENOENT, "gone"), WHERE, "download").transient


def test_connection_failure_gives_hints() -> None:
    error = translate(OSError("HDFS connection failed"), WHERE, "stat")
    assert isinstance(error, BackendError)
    assert "hadoop classpath --glob" in str(error) and WHERE in str(error)


def test_pyarrow_own_errors() -> None:
    assert isinstance(translate(OSError("GetFileInfo expects ..."), WHERE, "list"), BackendError)
    assert isinstance(translate(ValueError("bad path"), WHERE, "stat"), InvalidPath)
    already = NotFound("mine")
    assert translate(already, WHERE, "stat") is already
