"""SFTP servers (``sftp://[user[:password]@]host[:port]/path``), built on paramiko.

Hosts are completed from ``~/.ssh/config`` (HostName, User, Port, IdentityFile...),
so an alias alone works; keys (Ed25519, RSA, ECDSA), ssh-agent and passwords log
in. Host keys are checked against known_hosts (``[host]:port`` entries included)
and an unknown or changed key is refused with advice, never accepted silently.

A path store: the core's toolkit (:mod:`mlartifacts.pathstore`) writes to a
temporary name in the target directory and renames it over the target
(``posix-rename@openssh.com`` where the server has it), so nothing partial is ever
visible. Channels are pooled per server and login, transfers pipelined. paramiko
is imported only when an sftp URI is used.
"""

from __future__ import annotations

from mlartifacts import Capabilities, Settings
from mlartifacts.pathstore import PathStorePlugin, shared

from ._errors import HostKeyError
from ._fs import SftpFS
from ._uri import SftpRoot, parse_uri

__all__ = ["HostKeyError", "SftpFS", "SftpRoot", "plugin"]


def resolve(uri: str, settings: Settings) -> tuple[SftpFS, str]:
    """The server's filesystem (one per server and login) and the root's path there."""
    root = parse_uri(uri)
    key = (
        "sftp", root.hostname, root.port, root.username, root.password, root.key_filenames,
        root.identities_only, root.known_hosts, root.proxy_command, root.timeout,
        root.max_sessions, root.channels_per_connection, root.request_size,
    )  # fmt: skip
    # A path relative to the login directory (sftp://host/~/path) stays relative: SftpFS
    # puts it below the directory the server reports.
    return shared(key, lambda: SftpFS(root)), root.path


# Reads seek natively; one pipelined stream is as fast as paramiko goes (it is
# CPU-bound, and parallel ranges over one connection only contend), so downloads
# are not split into ranges.
plugin = PathStorePlugin(
    schemes=["sftp"], resolve=resolve, capabilities=Capabilities(ranged_read=True, single_stream=True)
)
