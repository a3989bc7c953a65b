"""The one place where pyarrow's HDFS errors become mlartifacts' errors.

libhdfs turns the Java exception into an errno (its ``exception.c`` table) and prints
the exception itself on stderr; pyarrow raises an ``OSError`` with that errno. So the
table maps errnos. 255 is libhdfs' "any other exception": on HDFS that is almost
always a NameNode or DataNode that could not be reached or failed mid-transfer
("could only be replicated to 0 nodes", "Could not obtain block"), which a retry
can cure once the node is back.
"""

from __future__ import annotations

import errno
import os
from typing import Final

from mlartifacts.errors import (
    AlreadyExists,
    ArtifactError,
    BackendError,
    InvalidPath,
    NotFound,
    NotSupported,
    PermissionDenied,
    TransientError,
)

__all__ = ["BY_ERRNO", "EINTERNAL", "translate"]

#: libhdfs' errno for a Java exception it has no entry for.
EINTERNAL: Final = 255

#: errno from libhdfs -> what it means here, and why, for the message.
BY_ERRNO: dict[int, tuple[type[ArtifactError], str]] = {
    errno.ENOENT: (NotFound, "no such file or directory"),  # FileNotFoundException
    errno.EACCES: (PermissionDenied, "permission denied"),  # AccessControlException
    errno.EPERM: (PermissionDenied, "permission denied"),
    errno.EEXIST: (AlreadyExists, "a file is in the way"),  # FileAlreadyExistsException
    errno.ENOTDIR: (InvalidPath, "a file is in the way of a directory"),  # ParentNotDirectoryException
    errno.EISDIR: (InvalidPath, "it is a directory"),
    errno.EINVAL: (InvalidPath, "HDFS refused the name (no ':' and no '.' or '..' components)"),
    errno.ENOLINK: (NotSupported, "an unresolved symbolic link"),  # UnresolvedLinkException
    errno.ENOTSUP: (NotSupported, "not supported by this file system"),
    errno.EDQUOT: (BackendError, "a quota of the directory is exceeded"),  # QuotaExceededException
    errno.ENOMEM: (TransientError, "the client's JVM ran out of memory (raise -Xmx in LIBHDFS_OPTS)"),
    errno.EIO: (TransientError, "I/O error (the NameNode may be in safe mode)"),  # SafeModeException
    errno.ESTALE: (TransientError, "the file's lease expired"),  # LeaseExpiredException
    EINTERNAL: (
        TransientError,
        "the Hadoop client failed, usually because the NameNode or a DataNode could not be reached "
        "or failed mid-transfer (its exception is printed on stderr)",
    ),
}


def translate(exc: BaseException, where: str, op: str) -> ArtifactError:
    """The mlartifacts error for ``exc``, raised by operation ``op`` on location ``where``."""
    if isinstance(exc, ArtifactError):
        return exc
    if isinstance(exc, OSError):
        if exc.errno is None:
            if "HDFS connection failed" in str(exc):
                return BackendError(
                    f"{op} {where}: could not connect to HDFS ({exc}); the client setup checks passed, "
                    "so check that CLASSPATH holds every jar of `hadoop classpath --glob` and the "
                    "configuration folder, and that the namenode's address is right"
                )
            return BackendError(f"{op} {where}: {exc}")  # raised by pyarrow itself, not libhdfs
        kind, meaning = BY_ERRNO.get(exc.errno, (BackendError, os.strerror(exc.errno)))
        return kind(f"{op} {where}: {meaning} ({_detail(exc)})")
    if isinstance(exc, ValueError):
        return InvalidPath(f"{op} {where}: {exc}")
    return BackendError(f"{op} {where}: {type(exc).__name__}: {exc}")


def _detail(exc: OSError) -> str:
    # pyarrow's text repeats itself ("[Errno 2] Opening ... failed. Detail: [errno 2] ..."):
    # keep its first sentence, which names the libhdfs call.
    text = str(exc)
    if text.startswith("[Errno"):
        text = text.split("] ", 1)[-1]
    return text.split(". Detail:", 1)[0]
