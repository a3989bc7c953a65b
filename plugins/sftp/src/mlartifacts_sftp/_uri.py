"""``sftp://`` URIs, completed from ``~/.ssh/config`` the way ``ssh`` would."""

from __future__ import annotations

import getpass
import os
import posixpath
from dataclasses import dataclass, field

from mlartifacts.config import env_float, env_int, env_str
from mlartifacts.errors import ConfigError
from mlartifacts.pathstore import split_uri

__all__ = ["SftpRoot", "parse_uri"]

DEFAULT_PORT = 22
#: Where ssh itself looks for host keys (besides UserKnownHostsFile from the config).
USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


@dataclass(frozen=True)
class SftpRoot:
    """A directory on an SFTP server and everything needed to log in there.

    ``path`` is absolute on the server, or relative to the login directory when
    ``home_relative`` (URIs of the form ``sftp://host/~/path``).
    """

    alias: str  # the host as written in the URI (an ~/.ssh/config alias, or a name)
    hostname: str  # what is connected to (HostName from the config, or the alias)
    port: int
    username: str
    path: str
    home_relative: bool = False
    password: str | None = field(default=None, repr=False)
    key_filenames: tuple[str, ...] = ()
    identities_only: bool = False
    known_hosts: tuple[str, ...] = ()
    proxy_command: str | None = None
    timeout: float = 30.0
    max_sessions: int = 8
    channels_per_connection: int = 8
    request_size: int | None = None  # None: chosen per server (see _pool.request_size)

    @property
    def display(self) -> str:
        """The root as a URI, without the password."""
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        path = f"/~/{self.path}" if self.home_relative else self.path
        return f"sftp://{self.username}@{self.alias}{port}{path}"

    @property
    def host_key_name(self) -> str:
        """The name of this server in known_hosts, as OpenSSH writes it."""
        return self.hostname if self.port == DEFAULT_PORT else f"[{self.hostname}]:{self.port}"


def parse_uri(uri: str) -> SftpRoot:
    """``sftp://[user[:password]@]host[:port]/path``, completed from the SSH config."""
    parts = split_uri(uri, ("sftp",), "sftp://[user@]host[:port]/path")
    alias = parts.host  # lowercase; ssh host names are case-insensitive
    config = _ssh_config(alias)

    path = parts.path or "/"
    home_relative = path == "/~" or path.startswith("/~/")
    if home_relative:
        path = path[3:]
    path = posixpath.normpath(path) if path else ""
    if path == ".":
        path = ""

    def text(key: str) -> str | None:
        value = config.get(key)
        return value if isinstance(value, str) else None

    port = parts.port or _int(text("port"), "Port in the SSH config") or DEFAULT_PORT
    username = parts.user or text("user") or getpass.getuser()
    password = parts.password
    identity = config.get("identityfile")
    identity_files = tuple(os.path.expanduser(p) for p in identity) if isinstance(identity, list) else ()
    known = env_str("MLARTIFACTS_SFTP_KNOWN_HOSTS")
    if known:
        known_hosts = tuple(os.path.expanduser(p) for p in known.split(os.pathsep) if p)
    else:
        user_files = (text("userknownhostsfile") or "").split() or USER_KNOWN_HOSTS
        global_files = (text("globalknownhostsfile") or "").split() or GLOBAL_KNOWN_HOSTS
        known_hosts = tuple(os.path.expanduser(p) for p in (*user_files, *global_files))
    timeout = env_float("MLARTIFACTS_SFTP_TIMEOUT", None) or _int(
        text("connecttimeout"), "ConnectTimeout in the SSH config"
    )
    request = env_int("MLARTIFACTS_SFTP_REQUEST_SIZE", 0, minimum=0)
    return SftpRoot(
        alias=alias,
        hostname=text("hostname") or alias,
        port=port,
        username=username,
        path=path,
        home_relative=home_relative,
        password=password,
        key_filenames=identity_files,
        identities_only=(text("identitiesonly") or "no").lower() == "yes",
        known_hosts=known_hosts,
        proxy_command=proxy if (proxy := text("proxycommand")) and proxy.lower() != "none" else None,
        timeout=float(timeout or 30.0),
        max_sessions=env_int("MLARTIFACTS_SFTP_MAX_SESSIONS", 8, minimum=1),
        channels_per_connection=env_int("MLARTIFACTS_SFTP_CHANNELS_PER_CONNECTION", 8, minimum=1),
        request_size=request or None,
    )


def _ssh_config(alias: str) -> dict[str, object]:
    """The SSH config's settings for ``alias`` (``MLARTIFACTS_SFTP_CONFIG``, else ~/.ssh/config)."""
    import paramiko  # the SDK is imported only when an sftp URI is used

    explicit = env_str("MLARTIFACTS_SFTP_CONFIG")
    path = os.path.expanduser(explicit or "~/.ssh/config")
    if explicit and explicit.lower() == "none":
        return {}
    try:
        config = paramiko.SSHConfig.from_path(path)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"MLARTIFACTS_SFTP_CONFIG names {path}, which does not exist") from None
        return {}
    except Exception as exc:  # paramiko raises assorted errors on a bad config
        raise ConfigError(f"cannot read the SSH config {path}: {exc}") from exc
    return dict(config.lookup(alias))


def _int(value: object, what: str) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
