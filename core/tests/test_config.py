"""Settings from the environment: MLflow's names, typed values, clear errors naming the variable."""

from __future__ import annotations

import pytest

from mlartifacts import MultipartLimits, Settings
from mlartifacts.config import env_bool, env_bytes, env_json_object, parse_bytes
from mlartifacts.errors import ConfigError


@pytest.mark.parametrize(("value", "timeout"), [("30", 30.0), ("0.5", 0.5), ("-1", None), ("", None)])
def test_timeout(value: str, timeout: float | None) -> None:
    assert Settings.from_env({"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": value}).timeout == timeout


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "10s"])
def test_invalid_timeout_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match=r"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.*-1"):
        Settings.from_env({"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": value})


def test_defaults_when_unset() -> None:
    assert Settings.from_env({}) == Settings()


def test_every_knob_reads_its_variable() -> None:
    settings = Settings.from_env(
        {
            "MLARTIFACTS_MAX_WORKERS": "3",
            "MLARTIFACTS_MULTIPART_THRESHOLD": "64MiB",
            "MLARTIFACTS_MULTIPART_CHUNKSIZE": "8 MB",
            "MLARTIFACTS_RANGED_DOWNLOAD_THRESHOLD": "1GiB",
            "MLARTIFACTS_RANGED_DOWNLOAD_CHUNKSIZE": "1048576",
            "MLARTIFACTS_MAX_RETRIES": "0",
            "MLARTIFACTS_RETRY_BACKOFF": "0.1",
            "MLARTIFACTS_RETRY_BACKOFF_MAX": "2",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
    )
    assert settings == Settings(
        max_workers=3,
        multipart_threshold=64 << 20,
        multipart_chunksize=8_000_000,
        ranged_download_threshold=1 << 30,
        ranged_download_chunksize=1 << 20,
        max_retries=0,
        retry_backoff=0.1,
        retry_backoff_max=2.0,
        progress_bar=False,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MLARTIFACTS_MAX_WORKERS", "0", "at least 1"),
        ("MLARTIFACTS_MAX_WORKERS", "many", "integer"),
        ("MLARTIFACTS_MULTIPART_CHUNKSIZE", "big", "size in bytes"),
        ("MLARTIFACTS_RETRY_BACKOFF", "-1", "negative"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "maybe", "true or false"),
    ],
)
def test_invalid_values(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}.*{message}"):
        Settings.from_env({name: value})


def test_helpers() -> None:
    assert env_bool("X", False, {"X": "Yes"}) is True
    assert env_bool("X", True, {}) is True
    assert env_bytes("X", 5, {"X": "2KiB"}) == 2048
    assert parse_bytes("1.5GiB") == 3 << 29
    assert env_json_object("X", {"X": '{"ServerSideEncryption": "aws:kms"}'}) == {
        "ServerSideEncryption": "aws:kms"
    }
    assert env_json_object("X", {}) == {}
    with pytest.raises(ConfigError, match="X is not valid JSON"):
        env_json_object("X", {"X": "{oops"})
    with pytest.raises(ConfigError, match="X must be a JSON object"):
        env_json_object("X", {"X": "[1, 2]"})


def test_replace_refuses_unknown_names() -> None:
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Settings().replace(colour="blue")


@pytest.mark.parametrize(
    ("size", "preferred", "expected"),
    [
        (100 << 20, 8 << 20, 8 << 20),  # the preferred size fits
        (100 << 20, 1 << 20, 5 << 20),  # clamped up to the minimum
        (100 << 20, 10 << 30, 5 << 30),  # clamped down to the maximum
        (1 << 40, 8 << 20, 105 << 20),  # 1 TiB needs ~104.9 MiB parts; rounded up to whole MiB
    ],
)
def test_part_size(size: int, preferred: int, expected: int) -> None:
    limits = MultipartLimits(5 << 20, 5 << 30, 10_000)
    part = limits.part_size_for(size, preferred)
    assert part == expected
    assert -(-size // part) <= 10_000


def test_too_large_for_any_part_size() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        MultipartLimits(5, 10, 3).part_size_for(31, 5)


@pytest.mark.parametrize(("value", "size"), [("0", 0), ("512KiB", 512 * 1024), ("16MiB", 16 << 20)])
def test_batch_file_size_zero_turns_batches_off(value: str, size: int) -> None:
    # Documented: 0 turns batches off (it used to be refused as "at least 1 byte").
    assert Settings.from_env({"MLARTIFACTS_BATCH_FILE_SIZE": value}).batch_file_size == size


def test_batch_file_size_over_the_cap_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="MLARTIFACTS_BATCH_FILE_SIZE"):
        Settings.from_env({"MLARTIFACTS_BATCH_FILE_SIZE": "17MiB"})
