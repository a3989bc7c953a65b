"""Plugin discovery and routing: which plugin serves which URI scheme.

Entry points of the group ``mlartifacts`` are read on first use, not at import.
Each plugin is imported and registered on its own: one that fails is recorded
with its error and an install hint, and every other plugin keeps working.
``MLARTIFACTS_PLUGINS`` (allow list) and ``MLARTIFACTS_DISABLE_PLUGINS`` (deny
list), both comma-separated plugin names, control what loads.
"""

from __future__ import annotations

import importlib.metadata
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pluggy

from . import hookspecs
from .config import env_list
from .errors import NoBackend, NotSupported, PluginError, PluginUnavailable

__all__ = [
    "PluginConflictWarning",
    "PluginHandle",
    "PluginRecord",
    "PluginRegistry",
    "default_registry",
    "scheme_of",
]

GROUP = "mlartifacts"

REQUIRED_HOOKS = ("schemes", "resolve_uri", "stat", "list", "upload", "write", "download", "read", "delete")
MULTIPART_HOOKS = ("create_multipart", "upload_part", "complete_multipart", "abort_multipart")

#: Which extra of the ``mlartifacts`` distribution provides each well-known scheme.
KNOWN_SCHEMES: Mapping[str, str] = {
    "": "nfs", "file": "nfs",
    "s3": "s3", "gs": "gcs",
    "wasbs": "azure", "wasb": "azure", "abfss": "azure", "abfs": "azure",
    "sftp": "sftp", "ftp": "ftp", "ftps": "ftp",
    "hdfs": "hdfs", "viewfs": "hdfs",
}  # fmt: skip

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


class PluginConflictWarning(UserWarning):
    """Two plugins claim the same URI scheme; the first by name serves it."""


def scheme_of(uri: str) -> str:
    """The lowercase scheme of ``uri``; '' for plain paths (including ``C:\\...``)."""
    match = _SCHEME.match(uri)
    if not match or len(match.group(1)) == 1:  # one letter is a Windows drive
        return ""
    return match.group(1).lower()


def install_hint(plugin: str) -> str:
    """How to install the plugin that provides a well-known backend."""
    return f"pip install 'mlartifacts[{plugin}]'"


@dataclass
class PluginRecord:
    """What the registry knows about one plugin, loaded or not (``mlartifacts plugins``)."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "loaded"  # "loaded" | "failed" | "disabled"
    error: str | None = None
    hint: str | None = None
    schemes: tuple[str, ...] = ()
    conflicts: list[str] = field(default_factory=list)


class PluginHandle:
    """One registered plugin: calls go to its hook implementations and nobody else's."""

    def __init__(self, pm: pluggy.PluginManager, plugin: object, record: PluginRecord) -> None:
        self._pm = pm
        self.plugin = plugin
        self.record = record

    @property
    def name(self) -> str:
        return self.record.name

    def implements(self, hook: str) -> bool:
        """Whether this plugin has an implementation of ``hook``."""
        caller = getattr(self._pm.hook, hook)
        return any(impl.plugin is self.plugin for impl in caller.get_hookimpls())

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call this plugin's implementation of ``hook``; NotSupported if it has none."""
        if not self.implements(hook):
            raise NotSupported(f"the '{self.name}' backend does not support {hook.replace('_', ' ')}")
        others = [p for p in self._pm.get_plugins() if p is not self.plugin]
        return self._pm.subset_hook_caller(hook, remove_plugins=others)(**kwargs)


class PluginRegistry:
    """Finds plugins through entry points (lazily) and routes each URI scheme to one of them.

    Args:
        autoload: read the ``mlartifacts`` entry points on first use. Tests pass
            False and :meth:`register` plugin objects themselves.
        environ: where ``MLARTIFACTS_PLUGINS`` / ``MLARTIFACTS_DISABLE_PLUGINS``
            are read (default: ``os.environ``, at first use).
    """

    def __init__(self, *, autoload: bool = True, environ: Mapping[str, str] | None = None) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._autoload = autoload
        self._environ = environ
        self._lock = threading.RLock()
        self._loaded = False
        self._records: dict[str, PluginRecord] = {}
        self._handles: dict[str, PluginHandle] = {}
        self._schemes: dict[str, PluginHandle] = {}
        self._warned: set[str] = set()

    # -- discovery ---------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:  # another thread may have loaded while this one waited
            if not self._loaded:
                if self._autoload:
                    self._load_entry_points()
                self._loaded = True

    def _load_entry_points(self) -> None:
        allow = env_list("MLARTIFACTS_PLUGINS", self._environ)
        deny = set(env_list("MLARTIFACTS_DISABLE_PLUGINS", self._environ) or ())
        eps = sorted(
            importlib.metadata.entry_points(group=GROUP),
            key=lambda ep: (ep.name, _dist_name(ep) or ""),
        )
        for ep in eps:
            dist, version = _dist_name(ep), _dist_version(ep)
            if ep.name in self._records:
                first = self._records[ep.name]
                first.conflicts.append(
                    f"plugin name '{ep.name}' is also registered by {dist or ep.value}; ignored"
                )
                continue
            record = PluginRecord(ep.name, dist, version, hint=_hint_for(ep.name, dist))
            self._records[ep.name] = record
            if ep.name in deny or (allow is not None and ep.name not in allow):
                record.status = "disabled"
                record.error = (
                    "disabled by MLARTIFACTS_DISABLE_PLUGINS"
                    if ep.name in deny
                    else "not in MLARTIFACTS_PLUGINS"
                )
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - isolate any failure of third-party code
                self._fail(record, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self._register(plugin, record)

    # -- registration ------------------------------------------------------------

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Register a plugin object (a module or an instance with ``@hookimpl`` methods).

        Returns its record; a plugin that fails validation is recorded as failed,
        not raised, exactly as for entry points.
        """
        self._ensure_loaded()
        with self._lock:
            if name in self._records and self._records[name].status == "loaded":
                raise PluginError(f"a plugin named '{name}' is already registered")
            return self._register(plugin, PluginRecord(name, distribution, version))

    def unregister(self, name: str) -> None:
        """Remove a plugin and give its schemes back to any other claimant."""
        with self._lock:
            handle = self._handles.pop(name, None)
            self._records.pop(name, None)
            if handle is not None:
                self.pm.unregister(handle.plugin)
            self._rebuild_schemes()

    def _register(self, plugin: object, record: PluginRecord) -> PluginRecord:
        self._records[record.name] = record
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # noqa: BLE001 - pluggy validation or a broken plugin object
            self._fail(record, f"registration failed: {exc}")
            return record
        handle = PluginHandle(self.pm, plugin, record)
        problem = self._validate(handle)
        if problem is None:
            try:
                record.schemes = _check_schemes(handle.call("schemes"))
            except Exception as exc:  # noqa: BLE001
                problem = f"schemes() failed: {type(exc).__name__}: {exc}"
        if problem is not None:
            self.pm.unregister(plugin)
            self._fail(record, problem)
            return record
        self._handles[record.name] = handle
        self._rebuild_schemes()
        return record

    def _validate(self, handle: PluginHandle) -> str | None:
        unknown = [
            caller.name for caller in self.pm.get_hookcallers(handle.plugin) or [] if caller.spec is None
        ]
        if unknown:
            return f"unknown hook(s): {', '.join(sorted(unknown))}"
        missing = [hook for hook in REQUIRED_HOOKS if not handle.implements(hook)]
        if missing:
            return f"missing required hook(s): {', '.join(missing)}"
        multipart = [hook for hook in MULTIPART_HOOKS if handle.implements(hook)]
        # abort_multipart may stand alone: with list_multipart_uploads it lets gc free what
        # interrupted writes left (a path store's temporaries) without multipart uploads.
        if multipart and multipart != ["abort_multipart"] and len(multipart) != len(MULTIPART_HOOKS):
            absent = [hook for hook in MULTIPART_HOOKS if hook not in multipart]
            return f"incomplete multipart support: missing {', '.join(absent)}"
        return None

    def _fail(self, record: PluginRecord, error: str) -> None:
        record.status = "failed"
        record.error = error

    def _rebuild_schemes(self) -> None:
        # First claimant by plugin name keeps a scheme, so the outcome never depends
        # on installation or import order; every other claimant is told so.
        self._schemes = {}
        for record in self._records.values():
            record.conflicts = [c for c in record.conflicts if not c.startswith("scheme ")]
        for name in sorted(self._handles):
            handle = self._handles[name]
            for scheme in handle.record.schemes:
                owner = self._schemes.get(scheme)
                if owner is None:
                    self._schemes[scheme] = handle
                    continue
                message = (
                    f"scheme {scheme!r} is claimed by '{owner.name}' and '{name}'; "
                    f"'{owner.name}' serves it (disable one with MLARTIFACTS_DISABLE_PLUGINS)"
                )
                owner.record.conflicts.append(message)
                handle.record.conflicts.append(message)

    # -- lookup ------------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every plugin seen: loaded, failed or disabled, sorted by name."""
        self._ensure_loaded()
        with self._lock:
            return [self._records[name] for name in sorted(self._records)]

    def handle(self, name: str) -> PluginHandle:
        """The loaded plugin called ``name``."""
        self._ensure_loaded()
        try:
            return self._handles[name]
        except KeyError:
            raise PluginError(f"no loaded plugin named '{name}'") from None

    def for_scheme(self, scheme: str) -> PluginHandle:
        """The plugin serving ``scheme``, or a clear error saying what to install."""
        self._ensure_loaded()
        with self._lock:
            handle = self._schemes.get(scheme)
            if handle is not None:
                conflicts = [c for c in handle.record.conflicts if c.startswith(f"scheme {scheme!r}")]
                if conflicts and scheme not in self._warned:
                    self._warned.add(scheme)
                    warnings.warn(conflicts[0], PluginConflictWarning, stacklevel=3)
                return handle
            shown = scheme or "plain paths"
            expected = KNOWN_SCHEMES.get(scheme)
            record = self._records.get(expected) if expected else None
            if record is not None and record.status != "loaded":
                raise PluginUnavailable(
                    f"the '{record.name}' plugin for {shown!r} is unavailable: {record.error}"
                    + (f" ({record.hint})" if record.hint and record.status == "failed" else "")
                )
            if expected:
                raise NoBackend(f"no plugin handles scheme {shown!r}: {install_hint(expected)}")
            failed = [r.name for r in self._records.values() if r.status == "failed"]
            raise NoBackend(
                f"no plugin handles scheme {shown!r}; installed plugins handle: "
                + (", ".join(repr(s) for s in sorted(self._schemes)) or "nothing")
                + (
                    f" (failed to load: {', '.join(sorted(failed))}; see `mlartifacts plugins`)"
                    if failed
                    else ""
                )
            )


def _check_schemes(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"schemes() must return a list of strings, got {value!r}")
    schemes = tuple(value)
    if not all(isinstance(s, str) for s in schemes):
        raise TypeError(f"schemes() must return a list of strings, got {value!r}")
    return tuple(s.lower() for s in schemes)


def _dist_name(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else None


def _dist_version(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


def _hint_for(name: str, dist: str | None) -> str:
    if name in set(KNOWN_SCHEMES.values()):
        return install_hint(name)
    return f"pip install --force-reinstall '{dist}'" if dist else "reinstall the plugin"


_default: PluginRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> PluginRegistry:
    """The process-wide registry of installed plugins (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginRegistry()
        return _default
