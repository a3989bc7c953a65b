"""HDFS URIs: explicit namenodes, the default namenode, ViewFS, and what is refused."""

from __future__ import annotations

import pytest

from mlartifacts.errors import InvalidUri
from mlartifacts_hdfs._client import Namenode
from mlartifacts_hdfs._root import parse_uri


@pytest.mark.parametrize(
    ("uri", "namenode", "path"),
    [
        ("hdfs://nn1:8020/user/mlflow/artifacts", Namenode("hdfs://nn1", 8020), "/user/mlflow/artifacts"),
        ("hdfs://nn1/a/b/", Namenode("hdfs://nn1", 0), "/a/b"),
        ("hdfs://NN1.example.com:9000", Namenode("hdfs://nn1.example.com", 9000), "/"),
        ("HDFS://nn1:8020/x", Namenode("hdfs://nn1", 8020), "/x"),
        ("hdfs://[::1]:8020/x", Namenode("hdfs://[::1]", 8020), "/x"),
        ("hdfs:///user/a", Namenode("default"), "/user/a"),
        ("hdfs:/user/a", Namenode("default"), "/user/a"),
        ("hdfs:///", Namenode("default"), "/"),
        ("hdfs://nn1/a//b/./c", Namenode("hdfs://nn1", 0), "/a/b/c"),
        ("hdfs://nn1/with%20space", Namenode("hdfs://nn1", 0), "/with space"),
        ("viewfs://cluster/data/x", Namenode("viewfs://cluster"), "/data/x"),
    ],
)
def test_parse(uri: str, namenode: Namenode, path: str) -> None:
    assert parse_uri(uri) == (namenode, path)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("hdfs://nn1:99999/x", "port"),
        ("hdfs://nn1:abc/x", "port"),
        ("hdfs://:8020/x", "port but no host"),
        ("hdfs://alice@nn1/x", "MLFLOW_KERBEROS_USER"),
        ("hdfs://nn1/x?user=alice", "no query"),
        ("hdfs://nn1/x#frag", "no query"),
        ("hdfs://nn1/a/../b", "'..'"),
        ("viewfs:///x", "mount table"),
        ("viewfs://cluster:8020/x", "mount table"),
        ("s3://bucket/x", "not an hdfs"),
    ],
)
def test_refused(uri: str, says: str) -> None:
    with pytest.raises(InvalidUri, match=says):
        parse_uri(uri)
