"""Plugin discovery and routing: lazy, isolated, validated, and never silent about conflicts."""

from __future__ import annotations

import importlib.metadata
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlartifacts import ArtifactStore, FileInfo, PluginRegistry, hookimpl
from mlartifacts import _registry as registry_module
from mlartifacts._registry import PluginConflictWarning, scheme_of
from mlartifacts.errors import NoBackend, NotSupported, PluginError, PluginUnavailable
from mlartifacts.testing import MemoryBackend

GOOD_PLUGIN = """
from mlartifacts import hookimpl
from mlartifacts.testing.memory import MemoryBackend

plugin = MemoryBackend(scheme="{scheme}")
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **values: str) -> list[str]:
    """Make the registry see these entry points (name -> "module[:attr]"), and count reads."""
    reads: list[str] = []
    eps = [importlib.metadata.EntryPoint(name, value, "mlartifacts") for name, value in values.items()]

    def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
        reads.append(group)
        return eps

    monkeypatch.setattr(registry_module.importlib.metadata, "entry_points", entry_points)
    return reads


def module(plugin_dir: Path, name: str, source: str) -> None:
    (plugin_dir / f"{name}.py").write_text(textwrap.dedent(source))


def test_discovery_is_lazy(monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    module(plugin_dir, "lazy_plugin", GOOD_PLUGIN.format(scheme="lazy"))
    reads = fake_entry_points(monkeypatch, lazy="lazy_plugin:plugin")
    registry = PluginRegistry()
    assert reads == []
    assert registry.for_scheme("lazy").name == "lazy"
    registry.records()
    assert reads == ["mlartifacts"]  # read once, on first use


def test_broken_plugin_is_isolated(monkeypatch: pytest.MonkeyPatch, plugin_dir: Path, tmp_path: Path) -> None:
    module(plugin_dir, "broken_sdk_plugin", "import fancy_cloud_sdk_that_is_not_installed\n")
    module(plugin_dir, "raising_plugin", "raise RuntimeError('plugin bug at import')\n")
    module(plugin_dir, "ok_plugin", GOOD_PLUGIN.format(scheme="ok"))
    fake_entry_points(
        monkeypatch, broken="broken_sdk_plugin", raising="raising_plugin", ok="ok_plugin:plugin"
    )
    registry = PluginRegistry()
    records = {r.name: r for r in registry.records()}
    assert records["broken"].status == "failed"
    assert "ModuleNotFoundError" in (records["broken"].error or "")
    assert "fancy_cloud_sdk_that_is_not_installed" in (records["broken"].error or "")
    assert records["raising"].status == "failed"
    assert "plugin bug at import" in (records["raising"].error or "")
    assert records["ok"].status == "loaded"
    with ArtifactStore("ok://bucket", registry=registry) as store:
        store.write_bytes("still/works.txt", b"yes")
        assert store.read_bytes("still/works.txt") == b"yes"


def test_failed_known_backend_explains_itself(monkeypatch: pytest.MonkeyPatch, plugin_dir: Path) -> None:
    module(plugin_dir, "fake_s3_plugin", "import boto3_is_missing_here\n")
    fake_entry_points(monkeypatch, s3="fake_s3_plugin")
    with pytest.raises(
        PluginUnavailable, match=r"'s3'.*unavailable.*boto3_is_missing_here.*mlartifacts\[s3\]"
    ):
        ArtifactStore("s3://bucket/key", registry=PluginRegistry())


def test_missing_backend_says_what_to_install() -> None:
    registry = PluginRegistry(autoload=False)
    with pytest.raises(NoBackend, match=r"no plugin handles scheme 'gs': pip install 'mlartifacts\[gcs\]'"):
        ArtifactStore("gs://bucket/x", registry=registry)
    with pytest.raises(NoBackend, match="scheme 'weird'"):
        ArtifactStore("weird://x", registry=registry)


@pytest.mark.parametrize(
    ("env", "loaded"),
    [
        ({"MLARTIFACTS_PLUGINS": "one"}, {"one"}),
        ({"MLARTIFACTS_DISABLE_PLUGINS": "one"}, {"two"}),
        ({"MLARTIFACTS_PLUGINS": "one,two", "MLARTIFACTS_DISABLE_PLUGINS": " two "}, {"one"}),
        ({}, {"one", "two"}),
    ],
)
def test_allow_and_deny_lists(
    monkeypatch: pytest.MonkeyPatch, plugin_dir: Path, env: dict[str, str], loaded: set[str]
) -> None:
    module(plugin_dir, "plugin_one", GOOD_PLUGIN.format(scheme="one"))
    module(plugin_dir, "plugin_two", GOOD_PLUGIN.format(scheme="two"))
    fake_entry_points(monkeypatch, one="plugin_one:plugin", two="plugin_two:plugin")
    registry = PluginRegistry(environ=env)
    records = registry.records()
    assert {r.name for r in records if r.status == "loaded"} == loaded
    for record in records:
        if record.name not in loaded:
            assert record.status == "disabled"
            assert "MLARTIFACTS_" in (record.error or "")
            with pytest.raises(NoBackend):
                registry.for_scheme(record.name)


def test_scheme_conflict_is_reported_and_deterministic() -> None:
    registry = PluginRegistry(autoload=False)
    zeta, alpha = MemoryBackend(scheme="dup"), MemoryBackend(scheme="dup")
    registry.register(zeta, "zeta")
    registry.register(alpha, "alpha")  # registered later, but first by name
    with pytest.warns(PluginConflictWarning, match="'alpha' serves it"):
        store = ArtifactStore("dup://b", registry=registry)
    assert store.plugin == "alpha"
    store.write_bytes("x", b"1")
    assert alpha.count("write") == 1 and zeta.count("write") == 0
    records = {r.name: r for r in registry.records()}
    assert any("claimed by 'alpha' and 'zeta'" in c for c in records["zeta"].conflicts)
    registry.unregister("alpha")
    assert registry.for_scheme("dup").name == "zeta"
    assert registry.records()[0].conflicts == []


def test_calls_reach_only_the_claiming_plugin(tmp_path: Path) -> None:
    registry = PluginRegistry(autoload=False)
    first, second = MemoryBackend(scheme="first"), MemoryBackend(scheme="second")
    registry.register(first, "first")
    registry.register(second, "second")
    with ArtifactStore("second://b", registry=registry) as store:
        store.write_bytes("a/b.txt", b"x")
        store.list_artifacts("a")
        store.stat("a/b.txt")
    assert first.calls == []
    assert [hook for hook, _ in second.calls] == ["write", "list", "stat"]


class Incomplete:
    @hookimpl
    def schemes(self) -> list[str]:
        return ["inc"]

    @hookimpl
    def resolve_uri(self, uri: str) -> str:
        return uri


class Misspelt(MemoryBackend):
    @hookimpl
    def uplaod(self, root: Any, path: str) -> None: ...


class HalfMultipart(Incomplete):
    @hookimpl
    def create_multipart(self, root: Any, path: str) -> str:
        return "id"


class BadSchemes(MemoryBackend):
    @hookimpl
    def schemes(self) -> str:  # type: ignore[override]
        return "bad"  # a string, not a list of strings


class WrongArgs(MemoryBackend):
    @hookimpl
    def stat(self, root: Any, path: str, unexpected: int) -> FileInfo:  # type: ignore[override]
        raise AssertionError


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (Incomplete(), "missing required hook(s): stat, list, upload, write, download, read, delete"),
        (Misspelt(), "unknown hook(s): uplaod"),
        (BadSchemes(), "schemes() failed"),
        (WrongArgs(), "registration failed"),
    ],
)
def test_invalid_plugins_are_refused(plugin: object, message: str) -> None:
    registry = PluginRegistry(autoload=False)
    record = registry.register(plugin, "candidate")
    assert record.status == "failed"
    assert message in (record.error or "")
    assert registry.pm.get_plugins() == set()  # nothing half-registered


def test_half_multipart_is_refused() -> None:
    class Full(MemoryBackend):
        pass

    record = PluginRegistry(autoload=False).register(HalfMultipart(), "half")
    assert "missing required hook" in (record.error or "")
    full = Full(limits=None)
    registry = PluginRegistry(autoload=False)
    assert registry.register(full, "full").status == "loaded"


def test_duplicate_name_is_an_error() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(MemoryBackend(), "memory")
    with pytest.raises(PluginError, match="already registered"):
        registry.register(MemoryBackend(), "memory")


def test_missing_capability_is_not_supported() -> None:
    registry = PluginRegistry(autoload=False)
    registry.register(MemoryBackend(limits=None), "memory")
    with ArtifactStore("memory://b", registry=registry) as store:
        with pytest.raises(NotSupported, match="does not support multipart"):
            store.backend.create_multipart("x")
        with pytest.raises(NotSupported, match="does not support presign"):
            store.presign("x")


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("s3://bucket/key", "s3"),
        ("S3://Bucket", "s3"),
        ("mlflow-artifacts:/1/2", "mlflow-artifacts"),
        ("file:///tmp/x", "file"),
        ("/abs/path", ""),
        ("relative/path", ""),
        ("C:\\Users\\me", ""),
        ("c:/data", ""),
        ("./odd:name", ""),
    ],
)
def test_scheme_of(uri: str, scheme: str) -> None:
    assert scheme_of(uri) == scheme


@pytest.fixture
def _fresh_default(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_default", None)
    return


@pytest.mark.usefixtures("_fresh_default")
def test_installed_plugins_are_found() -> None:
    records = {r.name: r for r in registry_module.default_registry().records()}
    assert records["nfs"].status == "loaded"
    assert records["nfs"].distribution == "mlartifacts-nfs"
    assert records["nfs"].schemes == ("", "file")
    assert records["memory"].distribution == "mlartifacts"


def test_every_install_hint_names_an_extra_that_exists() -> None:
    # "no plugin handles scheme 'x': pip install 'mlartifacts[y]'" must never send a user
    # to an extra the core does not have.
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from mlartifacts._registry import KNOWN_SCHEMES

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    missing = {scheme: extra for scheme, extra in KNOWN_SCHEMES.items() if extra not in extras}
    assert missing == {}, f"install hints name extras that do not exist: {missing}"
