"""ftplib and socket errors, translated into mlartifacts errors in one place.

FTP replies carry a three-digit code: 4xx are transient by definition (RFC 959),
5xx permanent. A 550 means "no such file" or "permission denied" depending on the
server and the command (vsftpd says only "Failed to open file."), so the caller
says what a bare 550 means for its command, and words in the reply override it.
"""

from __future__ import annotations

import ftplib
import socket
import ssl

from mlartifacts.errors import (
    ArtifactError,
    BackendError,
    InvalidPath,
    NotFound,
    NotSupported,
    PermissionDenied,
    TransientError,
    Unauthenticated,
)

__all__ = ["connection_lost", "reply_code", "translate"]

#: Reply codes whose meaning does not depend on the command.
_BY_CODE: dict[str, type[ArtifactError]] = {
    "421": TransientError,  # service not available, closing the control connection
    "425": TransientError,  # can't open the data connection
    "426": TransientError,  # connection closed, transfer aborted
    "450": TransientError,  # file unavailable (busy)
    "451": TransientError,  # local error in processing
    "452": BackendError,  # insufficient storage: 4xx, but retrying will not free space
    "500": NotSupported,  # command not recognized
    "502": NotSupported,  # command not implemented
    "504": NotSupported,  # parameter not implemented
    "530": Unauthenticated,  # not logged in (bad user or password)
    "532": Unauthenticated,  # an account is needed
    "534": PermissionDenied,  # refused by policy (often: "use TLS")
    "552": BackendError,  # storage allocation exceeded
    "553": PermissionDenied,  # file name not allowed (vsftpd: "Could not create file.")
}
_NOT_FOUND_WORDS = ("no such", "not found", "does not exist", "doesn't exist", "cannot find", "can't find")
_DENIED_WORDS = ("permission", "denied", "not allowed", "forbidden", "privilege")


def reply_code(exc: BaseException) -> str:
    """The reply code of an ftplib error ('' for other errors)."""
    if isinstance(exc, ftplib.Error) and exc.args:
        return str(exc.args[0])[:3]
    return ""


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` leaves the control connection unusable (so it is not reused)."""
    if isinstance(exc, (EOFError, OSError, ftplib.error_proto)):
        return True  # includes socket timeouts, resets, TLS errors
    return reply_code(exc) == "421"


def translate(exc: BaseException, where: str, on_550: type[ArtifactError] = NotFound) -> ArtifactError:
    """The mlartifacts error for an ftplib / socket failure at ``where``.

    Args:
        on_550: what a 550 reply means for the command that failed, unless the
            reply's words say otherwise.
    """
    if isinstance(exc, ArtifactError):
        return exc
    if isinstance(exc, ftplib.Error):
        text = str(exc).strip()
        code = reply_code(exc)
        kind = _BY_CODE.get(code)
        if code == "550":
            lowered = text.lower()
            if any(word in lowered for word in _DENIED_WORDS):
                kind = PermissionDenied
            elif any(word in lowered for word in _NOT_FOUND_WORDS):
                kind = NotFound
            else:
                kind = on_550
        elif code == "501" and "\n" not in text:
            kind = InvalidPath  # syntax error in the arguments: usually a name the server refuses
        if kind is None:
            transient = isinstance(exc, (ftplib.error_temp, ftplib.error_proto))
            kind = TransientError if transient else BackendError
        wants_tls = code == "534" or (
            code == "530" and any(w in text.lower() for w in ("encrypt", "tls", "ssl"))
        )
        hint = " (the server requires TLS: use ftps://)" if wants_tls else ""
        return kind(f"{where}: the server replied {text!r}{hint}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return BackendError(
            f"{where}: the server's TLS certificate is not trusted ({exc.verify_message}); "
            "set MLARTIFACTS_FTP_CA_FILE (or SSL_CERT_FILE) to the CA that signed it"
        )
    if isinstance(exc, socket.gaierror):
        return BackendError(f"{where}: cannot resolve the host name ({exc})")
    if isinstance(exc, (EOFError, OSError)):
        return TransientError(f"{where}: connection lost ({type(exc).__name__}: {exc or 'closed'})")
    return BackendError(f"{where}: {type(exc).__name__}: {exc}")
