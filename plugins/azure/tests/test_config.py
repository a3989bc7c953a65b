"""URIs and settings: parsed and checked before any request, each mistake named."""

from __future__ import annotations

import pytest

from mlartifacts.errors import ConfigError, InvalidUri
from mlartifacts_azure._client import Account, resolve_target
from mlartifacts_azure._config import DEFAULT_TIMEOUT, AzureConfig, parse_connection_string
from mlartifacts_azure._root import parse_uri

KEY = "a2V5"  # base64 of "key": any base64 signs


@pytest.mark.parametrize(
    ("uri", "container", "account", "url", "prefix"),
    [
        ("wasbs://c01@acct.blob.core.windows.net/a/b", "c01", "acct",
         "https://acct.blob.core.windows.net", "a/b"),
        ("wasb://c01@acct.blob.core.windows.net", "c01", "acct", "https://acct.blob.core.windows.net", ""),
        ("wasbs://my-box@acct.blob.core.chinacloudapi.cn/x/", "my-box", "acct",
         "https://acct.blob.core.chinacloudapi.cn", "x"),
        ("wasbs://box@acct.blob.core.usgovcloudapi.net/x", "box", "acct",
         "https://acct.blob.core.usgovcloudapi.net", "x"),
        # ADLS Gen2: served through the account's Blob endpoint.
        ("abfss://lake@acct.dfs.core.windows.net/runs/1", "lake", "acct",
         "https://acct.blob.core.windows.net", "runs/1"),
        ("abfs://lake@ACCT.DFS.core.windows.net/r", "lake", "acct",
         "https://acct.blob.core.windows.net", "r"),
    ],
)  # fmt: skip
def test_uris(uri: str, container: str, account: str, url: str, prefix: str) -> None:
    root = parse_uri(uri, AzureConfig())
    assert (root.container, root.account.name, root.account.url, root.prefix) == (
        container,
        account,
        url,
        prefix,
    )
    assert root.name("f.txt") == (f"{prefix}/f.txt" if prefix else "f.txt")
    assert root.rel(root.name("d/f.txt")) == "d/f.txt"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("wasbs://acct.blob.core.windows.net/x", "no container"),
        ("wasbs://c01@acct.dfs.core.windows.net/x", "not an account's blob endpoint"),
        ("abfss://c01@acct.blob.core.windows.net/x", "not an account's dfs endpoint"),
        ("wasbs://c01@127.0.0.1:10000/devstoreaccount1", "not an account's blob endpoint"),
        ("wasbs://Upper@acct.blob.core.windows.net/x", "not a container name"),
        ("wasbs://ab@acct.blob.core.windows.net/x", "not a container name"),
        ("wasbs://a--b@acct.blob.core.windows.net/x", "not a container name"),
        ("wasbs://c01@a_b.blob.core.windows.net/x", "not a storage account name"),
        ("wasbs://c01@acct.blob.core.windows.net/x?sig=abc", "no query"),
        ("wasbs://c01:secret@acct.blob.core.windows.net/x", "credentials do not belong"),
        ("s3://bucket/x", "expected"),
    ],
)
def test_bad_uris(uri: str, says: str) -> None:
    with pytest.raises(InvalidUri, match=says):
        parse_uri(uri, AzureConfig())


def test_defaults() -> None:
    config = AzureConfig.from_env({})
    assert config.timeout == DEFAULT_TIMEOUT == 600
    assert config.verify is True
    assert config.max_connections == 20
    assert config.credential_source == "DefaultAzureCredential"
    assert (config.connection_string, config.access_key, config.endpoint) == (None, None, None)


def test_each_variable() -> None:
    config = AzureConfig.from_env(
        {
            "AZURE_STORAGE_ACCESS_KEY": KEY,
            "MLARTIFACTS_AZURE_BLOB_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1/",
            "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "30",
            "MLFLOW_TRACKING_INSECURE_TLS": "true",
            "MLARTIFACTS_MAX_WORKERS": "4",
        }
    )
    assert config.credential_source == "AZURE_STORAGE_ACCESS_KEY"
    assert config.endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert (config.timeout, config.verify, config.max_connections) == (30.0, False, 8)
    assert AzureConfig.from_env({"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1"}).timeout is None


def test_secrets_stay_out_of_repr() -> None:
    config = AzureConfig.from_env(
        {
            "AZURE_STORAGE_ACCESS_KEY": "sekrit",
            "AZURE_STORAGE_CONNECTION_STRING": f"AccountName=a;AccountKey={KEY}",
        }
    )
    assert "sekrit" not in repr(config) and KEY not in repr(config)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"MLARTIFACTS_AZURE_BLOB_ENDPOINT": "127.0.0.1:10000"}, "MLARTIFACTS_AZURE_BLOB_ENDPOINT"),
        ({"MLARTIFACTS_AZURE_BLOB_ENDPOINT": "http://h/x?sv=1"}, "MLARTIFACTS_AZURE_BLOB_ENDPOINT"),
        ({"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "soon"}, "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"),
        ({"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "0"}, "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"),
        ({"MLFLOW_TRACKING_INSECURE_TLS": "maybe"}, "MLFLOW_TRACKING_INSECURE_TLS"),
        ({"MLFLOW_TRACKING_SERVER_CERT_PATH": "/nonexistent/ca.pem"}, "MLFLOW_TRACKING_SERVER_CERT_PATH"),
        ({"MLFLOW_TRACKING_INSECURE_TLS": "true", "MLFLOW_TRACKING_SERVER_CERT_PATH": __file__}, "both set"),
        ({"MLARTIFACTS_MAX_WORKERS": "0"}, "MLARTIFACTS_MAX_WORKERS"),
        ({"AZURE_STORAGE_CONNECTION_STRING": "just-a-key"}, "AZURE_STORAGE_CONNECTION_STRING"),
        ({"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;Foo=b"}, "neither AccountKey"),
        ({"AZURE_STORAGE_CONNECTION_STRING": f"AccountKey={KEY}"}, "neither AccountName nor BlobEndpoint"),
    ],
)
def test_invalid_settings_name_their_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as raised:
        AzureConfig.from_env(env)
    assert KEY not in str(raised.value)


ACCOUNT = Account("acct", "https://acct.blob.core.windows.net")


def test_credential_order_connection_string_first() -> None:
    config = AzureConfig.from_env(
        {
            "AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acct;AccountKey={KEY};EndpointSuffix=core.net",
            "AZURE_STORAGE_ACCESS_KEY": "b3RoZXI=",
        }
    )
    target = resolve_target(config, ACCOUNT)
    assert (target.source, target.url, target.credential.named_key.key) == (
        "AZURE_STORAGE_CONNECTION_STRING",
        ACCOUNT.url,
        KEY,
    )


def test_connection_string_blob_endpoint_is_honoured_and_override_wins() -> None:
    cs = f"AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:1/acct;"
    assert resolve_target(AzureConfig(connection_string=cs), ACCOUNT).url == "http://127.0.0.1:1/acct"
    override = AzureConfig(connection_string=cs, endpoint="https://private.example/acct")
    assert resolve_target(override, ACCOUNT).url == "https://private.example/acct"


def test_connection_string_with_sas() -> None:
    cs = "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=?sv=2024&sig=x"
    target = resolve_target(AzureConfig(connection_string=cs), ACCOUNT)
    assert target.credential == "sv=2024&sig=x"


def test_connection_string_of_another_account_is_refused() -> None:
    config = AzureConfig(connection_string=f"AccountName=other;AccountKey={KEY}")
    with pytest.raises(ConfigError, match=r"'other'.*'acct'"):
        resolve_target(config, ACCOUNT)


def test_access_key_second_default_credential_last() -> None:
    target = resolve_target(AzureConfig(access_key=KEY), ACCOUNT)
    assert (target.source, target.credential.named_key.name) == ("AZURE_STORAGE_ACCESS_KEY", "acct")
    chain = resolve_target(AzureConfig(), ACCOUNT)
    assert chain.source == "DefaultAzureCredential"
    assert type(chain.credential).__name__ == "DefaultAzureCredential"


def test_parse_connection_string_keeps_values_with_equals() -> None:
    pairs = parse_connection_string(f"AccountName=a;AccountKey={KEY}==;")
    assert pairs["AccountKey"] == f"{KEY}=="


def test_pool_follows_the_store_settings_not_the_environment() -> None:
    # Settings(max_workers=32) runs 2 x 32 threads: the pool must hold as many connections.
    from mlartifacts import Settings

    env = {"MLARTIFACTS_MAX_WORKERS": "4"}
    assert AzureConfig.from_env(env, settings=Settings(max_workers=32)).max_connections == 64
    assert AzureConfig.from_env(env).max_connections == 8
