"""The session's cluster itself: a raw pyarrow client writes across blocks and reads back."""

from __future__ import annotations

import os
from typing import Any


def test_cluster_serves_a_multi_block_file(hdfs: Any) -> None:
    from pyarrow import fs

    block = hdfs.block_size
    client = fs.HadoopFileSystem("127.0.0.1", hdfs.port)
    data = os.urandom(3 * block + 5)
    with client.open_output_stream("/smoke/blocks.bin") as out:
        out.write(data)
    assert client.get_file_info("/smoke/blocks.bin").size == len(data)
    with client.open_input_file("/smoke/blocks.bin") as src:
        assert src.read_at(10, block - 5) == data[block - 5 : block + 5]
        assert src.read() == data
    client.delete_dir("/smoke")
