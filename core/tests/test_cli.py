"""The ``mlartifacts`` command line: cp / ls / rm / plugins, exit codes and messages."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path

import pytest

from mlartifacts.cli import run
from mlartifacts.testing.contract import random_bytes, read_tree, write_tree


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", {"a.txt": b"hello", "d/e/f.bin": random_bytes(3000), "d/g.txt": b"g"})


def test_cp_upload_file(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert cli(capsys, "cp", str(src / "a.txt"), f"{store}/") == (0, "", "")
    assert (store / "a.txt").read_bytes() == b"hello"
    assert cli(capsys, "cp", str(src / "a.txt"), str(store / "renamed.txt"))[0] == 0
    assert (store / "renamed.txt").read_bytes() == b"hello"
    assert cli(capsys, "cp", str(src / "a.txt"), str(store))[0] == 0  # an existing directory
    assert (store / "a.txt").read_bytes() == b"hello"


def test_cp_tree_round_trip(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    uri = (tmp_path / "store").as_uri()
    assert cli(capsys, "cp", "-r", str(src), f"{uri}/run")[0] == 0
    assert cli(capsys, "cp", "-r", f"{uri}/run", str(tmp_path / "back"))[0] == 0
    assert read_tree(tmp_path / "back") == read_tree(src)


def test_cp_download_file(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    cli(capsys, "cp", "-r", str(src), str(tmp_path / "store"))
    (tmp_path / "out").mkdir()
    assert cli(capsys, "cp", str(tmp_path / "store/d/e/f.bin"), str(tmp_path / "out"))[0] == 0
    assert (tmp_path / "out/f.bin").read_bytes() == random_bytes(3000)


def test_cp_between_uris(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    bucket = f"memory://cli-{uuid.uuid4().hex}"
    assert cli(capsys, "cp", "-r", str(src), f"{bucket}/up")[0] == 0
    assert cli(capsys, "cp", f"{bucket}/up/a.txt", f"{bucket}/copy/")[0] == 0
    assert cli(capsys, "cp", "-r", f"{bucket}/up", str(tmp_path / "local-store"))[0] == 0
    assert read_tree(tmp_path / "local-store") == read_tree(src)
    _code, out, _ = cli(capsys, "ls", "--json", f"{bucket}/copy")
    assert json.loads(out) == [{"path": "a.txt", "is_dir": False, "file_size": 5}]


def test_cp_directory_needs_recursive(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    code, _out, err = cli(capsys, "cp", str(src), str(tmp_path / "x"))
    assert code == 1
    assert err == f"mlartifacts: error: {src} is a directory (use -r)\n"


def test_ls(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    cli(capsys, "cp", "-r", str(src), store)
    code, out, _ = cli(capsys, "ls", store)
    assert code == 0
    assert out.splitlines() == [f"{5:>14}  a.txt", f"{'DIR':>14}  d/"]
    code, out, _ = cli(capsys, "ls", "-r", "--json", store)
    assert json.loads(out) == [
        {"path": "a.txt", "is_dir": False, "file_size": 5},
        {"path": "d/e/f.bin", "is_dir": False, "file_size": 3000},
        {"path": "d/g.txt", "is_dir": False, "file_size": 1},
    ]
    code, out, _ = cli(capsys, "ls", "--json", f"{store}/d")
    assert json.loads(out) == [
        {"path": "e", "is_dir": True},
        {"path": "g.txt", "is_dir": False, "file_size": 1},
    ]
    assert json.loads(cli(capsys, "ls", "--json", f"{store}/a.txt")[1]) == [
        {"path": "a.txt", "is_dir": False, "file_size": 5}
    ]


def test_rm(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli(capsys, "cp", "-r", str(src), str(store))
    code, _, err = cli(capsys, "rm", str(store / "d"))
    assert (code, err) == (1, f"mlartifacts: error: {store / 'd'} is a directory (use -r)\n")
    assert cli(capsys, "rm", "-r", str(store / "d"))[0] == 0
    assert cli(capsys, "rm", str(store / "a.txt"))[0] == 0
    assert list(store.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ls", "nosuch://bucket/x"], "no plugin handles scheme 'nosuch'"),
        (["ls", "{tmp}/missing"], "no such file or directory"),
        (["rm", "{tmp}/missing"], "no such file or directory"),
        (["cp", "{tmp}/missing.txt", "{tmp}/dst"], "no such file"),
        (["cp", "{tmp}/f.txt", "memory://b/../escape"], "'..' segments are not allowed"),
        (["cp", "{tmp}/f.txt", "memory://b/x?versionId=1"], "take no query"),
    ],
)
def test_expected_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    code, out, err = cli(capsys, *(a.format(tmp=tmp_path) for a in argv))
    assert code == 1
    assert out == ""
    assert err.startswith("mlartifacts: error: ") and err.count("\n") == 1
    assert message in err
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["cp", "only-one-argument"])
    assert exit_info.value.code == 2


def test_plugins_json(capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, _ = cli(capsys, "plugins", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    nfs = rows["nfs"]
    assert nfs["distribution"] == "mlartifacts-nfs"
    assert nfs["status"] == "loaded" and nfs["error"] is None
    assert nfs["schemes"] == ["", "file"]
    assert nfs["capabilities"]["ranged_read"] is True
    assert nfs["capabilities"]["multipart"] is None
    assert rows["memory"]["capabilities"]["multipart"] == {
        "min_part_size": 5 << 20,
        "max_part_size": 5 << 30,
        "max_parts": 10_000,
        "threshold": None,
        "part_size": None,
        "retention": None,
    }


def _cp_command(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-c", "from mlartifacts.cli import main; main()", "cp", str(src), str(dst)]


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(random_bytes(4 << 20))
    env = {**os.environ, "COLUMNS": "100"}
    piped = subprocess.run(_cp_command(big, tmp_path / "piped.bin"), capture_output=True, env=env, check=True)
    assert piped.stderr == b""  # quiet when piped

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    try:
        proc = subprocess.run(
            _cp_command(big, tmp_path / "tty.bin"),
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env=env,
            timeout=60,
            check=True,
        )
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other side closed
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
    assert proc.returncode == 0
    assert b"100%" in drawn and b"4.00M" in drawn
    assert (tmp_path / "tty.bin").read_bytes() == big.read_bytes()


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_cp_to_a_hung_service_fails_at_the_timeout(tmp_path: Path, direction: str) -> None:
    """MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT bounds the whole command, not MLFLOW_HTTP_REQUEST_TIMEOUT."""
    timeout = 3
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        remote = f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/artifacts/x/file.bin"
        local = tmp_path / "file.bin"
        if direction == "upload":
            local.write_bytes(b"data" * 1000)
        src, dst = (remote, local) if direction == "download" else (local, remote)
        env = {
            **os.environ,
            "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": str(timeout),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
            "MLFLOW_TRACKING_USERNAME": "",
            "MLFLOW_TRACKING_PASSWORD": "",
        }
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from mlartifacts.cli import main; main()",
                "cp",
                "-q",
                str(src),
                str(dst),
            ],
            capture_output=True,
            env=env,
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert b"timed out" in done.stderr, done.stderr
    assert elapsed < timeout + 5, f"cp failed after {elapsed:.1f} s"
    assert not any(p.name != "file.bin" for p in tmp_path.iterdir())  # no temporary left
