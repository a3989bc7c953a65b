"""Host-key verification against known_hosts: unknown or changed keys are refused, never accepted.

paramiko's ``SSHClient`` looks the server up in the loaded known_hosts files under
the name OpenSSH uses (``host``, or ``[host]:port`` off port 22, hashed entries
included) and raises ``BadHostKeyException`` on a mismatch; the policy below
handles a server that is not there at all.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from typing import TYPE_CHECKING, Any

from ._errors import HostKeyError

if TYPE_CHECKING:
    from ._uri import SftpRoot

__all__ = ["changed_key_advice", "fingerprint", "refusing_policy"]


def fingerprint(key: Any) -> str:
    """``ssh-ed25519 SHA256:...``, as ``ssh-keygen -l`` prints it."""
    if key is None:
        return "no key"
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def _keyscan(root: SftpRoot) -> str:
    port = f"-p {root.port} " if root.port != 22 else ""
    target = root.known_hosts[0] if root.known_hosts else "~/.ssh/known_hosts"
    return f"ssh-keyscan {port}{shlex.quote(root.hostname)} >> {target}"


def unknown_key_advice(root: SftpRoot, key: Any) -> str:
    """What to say when the server is in no known_hosts file."""
    files = ", ".join(root.known_hosts) or "no known_hosts file"
    return (
        f"the host key of {root.host_key_name} ({fingerprint(key)}) is not in {files}, so the server "
        f"cannot be verified and the connection was refused. If you trust this server, add its key: "
        f"{_keyscan(root)} (check the fingerprint with the server's administrator first), "
        "or connect once with ssh and accept it"
    )


def changed_key_advice(got: Any, expected: Any, root: SftpRoot | None = None) -> str:
    """What to say when the server's key differs from the known one."""
    name = root.host_key_name if root is not None else "HOST"
    remove = f"ssh-keygen -R {shlex.quote(name)}"
    add = _keyscan(root) if root is not None else "ssh-keyscan [-p PORT] HOST >> ~/.ssh/known_hosts"
    return (
        f"the host key of {name} has CHANGED: known_hosts has {fingerprint(expected)}, the server "
        f"offers {fingerprint(got)}. Someone may be intercepting the connection, or the server was "
        f"reinstalled; the connection was refused. If you know the change is legitimate, remove the "
        f"old key ({remove}) and add the new one ({add}) after checking its fingerprint"
    )


def refusing_policy(root: SftpRoot) -> Any:
    """A paramiko MissingHostKeyPolicy that refuses unknown servers with advice."""
    import paramiko

    class RefuseUnknown(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            raise HostKeyError(unknown_key_advice(root, key))

    return RefuseUnknown()
