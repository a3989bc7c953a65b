"""HDFS settings, read from the environment once per resolved URI, with MLflow's names and meanings.

| variable | meaning |
|---|---|
| ``MLFLOW_KERBEROS_TICKET_CACHE`` | Kerberos ticket cache file (``kinit -c``), passed as ``kerb_ticket`` |
| ``MLFLOW_KERBEROS_USER`` | user to act as (the Kerberos principal, or the HDFS user with simple auth) |
| ``MLFLOW_PYARROW_EXTRA_CONF`` | Hadoop client settings: ``k1=v1,k2=v2`` (MLflow's form) or a JSON object |
| ``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` | seconds a transfer may take; caps the client socket timeouts |

The Hadoop client itself is configured as usual: ``core-site.xml`` and
``hdfs-site.xml`` from the directory on the ``CLASSPATH`` (``hdfs:///path`` uses their
``fs.defaultFS``), ``HADOOP_USER_NAME`` with simple authentication.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Mapping

from mlartifacts import Settings
from mlartifacts.config import env_str
from mlartifacts.errors import ConfigError

__all__ = ["HdfsConfig", "parse_extra_conf"]

EXTRA_CONF = "MLFLOW_PYARROW_EXTRA_CONF"

#: Hadoop client timeouts (milliseconds) that a shorter transfer deadline lowers: a
#: DataNode or NameNode that stops answering then fails the call before the
#: deadline, instead of holding a thread in the JVM for Hadoop's default minute.
TIMEOUT_KEYS = ("dfs.client.socket-timeout", "ipc.client.connect.timeout")
_SHORTEST_TIMEOUT_MS = 1000  # below this, ordinary calls on a busy cluster would fail


@dataclass(frozen=True)
class HdfsConfig:
    """What shapes a connection: equal configs (and namenodes) share one filesystem object."""

    user: str | None = None
    kerb_ticket: str | None = None
    extra_conf: tuple[tuple[str, str], ...] = ()  # sorted, so the config stays hashable

    @classmethod
    def from_env(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> HdfsConfig:
        """Read and check the settings; an invalid value raises ConfigError naming its variable.

        ``settings`` are the engine's: its ``timeout`` (MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT)
        caps the Hadoop client's socket timeouts.
        """
        env = os.environ if environ is None else environ
        conf = parse_extra_conf(env_str(EXTRA_CONF, None, env))
        timeout = settings.timeout
        if timeout is not None:
            cap = str(max(_SHORTEST_TIMEOUT_MS, math.ceil(timeout * 1000)))
            for key in TIMEOUT_KEYS:
                conf.setdefault(key, cap)  # a value the user set explicitly wins
        ticket = env_str("MLFLOW_KERBEROS_TICKET_CACHE", None, env)
        if ticket is not None and not os.path.isfile(ticket):
            raise ConfigError(
                f"MLFLOW_KERBEROS_TICKET_CACHE names {ticket!r}, which is not a file "
                "(run kinit, or point it at the ticket cache kinit wrote)"
            )
        return cls(
            user=env_str("MLFLOW_KERBEROS_USER", None, env),
            kerb_ticket=ticket,
            extra_conf=tuple(sorted(conf.items())),
        )

    @property
    def extra(self) -> dict[str, str]:
        """The extra Hadoop settings as a fresh dict (pyarrow's ``extra_conf``)."""
        return dict(self.extra_conf)


def parse_extra_conf(value: str | None) -> dict[str, str]:
    """``MLFLOW_PYARROW_EXTRA_CONF``: ``k1=v1,k2=v2`` as MLflow reads it, or a JSON object."""
    if value is None or not value.strip():
        return {}
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{EXTRA_CONF} is not valid JSON ({exc.msg} at char {exc.pos}): {value!r}"
            ) from None
        conf: dict[str, str] = {}
        for key, item in parsed.items():
            if isinstance(item, bool):
                conf[key] = "true" if item else "false"  # Hadoop's spelling, not Python's
            elif isinstance(item, (str, int, float)):
                conf[key] = str(item)
            else:
                raise ConfigError(
                    f"{EXTRA_CONF}: the value of {key!r} must be a string, number or boolean, got {item!r}"
                )
        return conf
    conf = {}
    for pair in text.split(","):
        key, sep, item = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"{EXTRA_CONF} must be key=value pairs separated by commas "
                f'(dfs.replication=2,dfs.blocksize=268435456) or a JSON object ({{"dfs.replication": "2"}}), '
                f"got {value!r}"
            )
        conf[key.strip()] = item.strip()
    return conf
