"""Settings: MLflow's names and meanings, and a clear error naming the variable for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlartifacts import Settings
from mlartifacts.errors import ConfigError
from mlartifacts_hdfs._config import TIMEOUT_KEYS, HdfsConfig, parse_extra_conf


def test_extra_conf_in_mlflow_form() -> None:
    assert parse_extra_conf("dfs.replication=2, dfs.blocksize=268435456") == {
        "dfs.replication": "2",
        "dfs.blocksize": "268435456",
    }
    # Only the first '=' separates: a value may hold more.
    assert parse_extra_conf("hadoop.rpc.protection=a=b") == {"hadoop.rpc.protection": "a=b"}


def test_extra_conf_as_json_object() -> None:
    assert parse_extra_conf(
        '{"dfs.replication": 2, "dfs.client.use.datanode.hostname": true, "x": "a,b"}'
    ) == {
        "dfs.replication": "2",
        "dfs.client.use.datanode.hostname": "true",  # Hadoop's spelling of a boolean
        "x": "a,b",
    }


@pytest.mark.parametrize("value", [None, "", "   "])
def test_extra_conf_unset(value: str | None) -> None:
    assert parse_extra_conf(value) == {}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("dfs.replication", "key=value pairs"),
        ("a=1,=2", "key=value pairs"),
        ("a=1,,b=2", "key=value pairs"),
        ('{"a": 1', "not valid JSON"),
        ('{"a": [1, 2]}', "string, number or boolean"),
        ('{"a": null}', "string, number or boolean"),
    ],
)
def test_invalid_extra_conf_names_the_variable(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match="MLFLOW_PYARROW_EXTRA_CONF") as raised:
        HdfsConfig.from_env(Settings(), {"MLFLOW_PYARROW_EXTRA_CONF": value})
    assert says in str(raised.value)


def test_kerberos_settings(tmp_path: Path) -> None:
    ticket = tmp_path / "krb5cc"
    ticket.write_bytes(b"\x05\x04")
    config = HdfsConfig.from_env(
        Settings(), {"MLFLOW_KERBEROS_TICKET_CACHE": str(ticket), "MLFLOW_KERBEROS_USER": "alice@EXAMPLE.COM"}
    )
    assert (config.kerb_ticket, config.user) == (str(ticket), "alice@EXAMPLE.COM")
    assert HdfsConfig.from_env(Settings(), {}) == HdfsConfig()


def test_missing_ticket_cache_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"MLFLOW_KERBEROS_TICKET_CACHE .*not a file"):
        HdfsConfig.from_env(Settings(), {"MLFLOW_KERBEROS_TICKET_CACHE": str(tmp_path / "none")})


def test_timeout_caps_the_client_socket_timeouts() -> None:
    config = HdfsConfig.from_env(Settings(timeout=7.5), {})
    assert {key: config.extra[key] for key in TIMEOUT_KEYS} == dict.fromkeys(TIMEOUT_KEYS, "7500")
    # Never below a second, and a value set explicitly wins.
    tiny = HdfsConfig.from_env(
        Settings(timeout=0.01), {"MLFLOW_PYARROW_EXTRA_CONF": "dfs.client.socket-timeout=90000"}
    )
    assert tiny.extra == {"dfs.client.socket-timeout": "90000", "ipc.client.connect.timeout": "1000"}
    assert HdfsConfig.from_env(Settings(timeout=None), {}).extra == {}


def test_configs_are_keys() -> None:
    # Equal settings share one filesystem: the config must hash, whatever the order given.
    one = HdfsConfig.from_env(Settings(), {"MLFLOW_PYARROW_EXTRA_CONF": "a=1,b=2"})
    two = HdfsConfig.from_env(Settings(), {"MLFLOW_PYARROW_EXTRA_CONF": '{"b": "2", "a": "1"}'})
    assert one == two and hash(one) == hash(two)
