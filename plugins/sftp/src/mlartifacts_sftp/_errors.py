"""paramiko and SFTP errors, translated into mlartifacts errors in one place.

SFTP status codes reach us as ``IOError``/``OSError`` with an errno (paramiko maps
``SSH_FX_NO_SUCH_FILE`` to ENOENT and ``SSH_FX_PERMISSION_DENIED`` to EACCES);
OpenSSH reports most other failures as the generic ``SSH_FX_FAILURE`` ("Failure").
Anything that means the connection is gone is transient: the core retries, and
the pool opens a new connection.
"""

from __future__ import annotations

import socket

from mlartifacts.errors import ArtifactError, BackendError, NotSupported, TransientError, Unauthenticated
from mlartifacts.pathstore import translate_os_error

__all__ = ["HostKeyError", "connection_lost", "translate"]


class HostKeyError(Unauthenticated):
    """The server's host key is unknown, or differs from the one in known_hosts."""


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the SSH connection (or its channel) is unusable."""
    import paramiko

    if isinstance(exc, (paramiko.SSHException, EOFError, socket.timeout, ConnectionError)):
        return True
    # paramiko raises a bare OSError("Socket is closed") on a closed channel.
    return isinstance(exc, OSError) and exc.errno is None and "closed" in str(exc).lower()


def translate(exc: BaseException, where: str) -> ArtifactError:
    """The mlartifacts error for a paramiko / SFTP failure at ``where``."""
    import paramiko

    if isinstance(exc, ArtifactError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(_changed_key_message(exc, where))
    if isinstance(exc, paramiko.AuthenticationException):
        return Unauthenticated(
            f"{where}: authentication failed ({exc}). Check the user name, and that a key the server "
            "accepts is in ssh-agent, in ~/.ssh (id_ed25519, id_rsa...) or named by IdentityFile in "
            "~/.ssh/config; or put the password in the URI"
        )
    if isinstance(exc, paramiko.ChannelException):
        return TransientError(f"{where}: the server refused a new SFTP channel ({exc})")
    if isinstance(exc, socket.gaierror):
        return BackendError(f"{where}: cannot resolve the host name ({exc})")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return TransientError(f"{where}: cannot connect ({exc})")
    if isinstance(exc, paramiko.ssh_exception.IncompatiblePeer):
        return NotSupported(f"{where}: no SSH algorithm in common with the server ({exc})")
    if connection_lost(exc):
        return TransientError(f"{where}: connection lost ({type(exc).__name__}: {exc or 'closed'})")
    if isinstance(exc, OSError) and exc.errno is None:
        return BackendError(f"{where}: the SFTP server answered {exc}")
    return translate_os_error(exc, where)  # SFTP status codes as errnos, and the rest


def _changed_key_message(exc: object, where: str) -> str:
    from ._hostkeys import changed_key_advice

    return f"{where}: " + changed_key_advice(getattr(exc, "key", None), getattr(exc, "expected_key", None))
