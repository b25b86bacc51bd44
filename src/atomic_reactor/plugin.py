"""Workflow plugins: the base classes, how they are found, and how a phase runs.

A plugin is a class with a ``key`` and a ``run()`` method, derived from one of the
phase classes below and constructed as ``Plugin(tasker, workflow, **args)``.
Its arguments are the keyword parameters of its ``__init__`` (see
:mod:`atomic_reactor._plugin_args`); a request with an argument the plugin does not
take is refused before the build starts. ``run()``'s return value is the plugin's
result: later plugins read it with ``workflow.plugin_result(key)``, and it ends up
in the build results.

Plugins are found through the entry-point group ``atomic_reactor.plugins``: the
entry point's name is the plugin key, its value the class. atomic-reactor's own
plugins are registered the same way. ``plugin_files`` (``--load-plugin``) add
plugins from Python files.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from atomic_reactor._entrypoints import entry_point_names, find_entry_point
from atomic_reactor._modules import NotAModule, exec_file
from atomic_reactor._plugin_args import effective_args, plugin_schema, validate_plugin_args
from atomic_reactor.errors import (
    AtomicReactorError,
    AutoRebuildCanceled,
    BuildCancelled,
    PluginConfigError,
    PluginFailed,
)

if TYPE_CHECKING:
    from atomic_reactor.build import InsideBuilder
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

logger = logging.getLogger(__name__)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PHASES",
    "BuildPlugin",
    "ExitPlugin",
    "ExitPluginsRunner",
    "InputPluginsRunner",
    "Plugin",
    "PluginLibrary",
    "PluginRequest",
    "PluginsRunner",
    "PostBuildPlugin",
    "PostBuildPluginsRunner",
    "PreBuildPlugin",
    "PreBuildPluginsRunner",
    "PrePublishPlugin",
    "PrePublishPluginsRunner",
    "plugin_schema",
]

ENTRY_POINT_GROUP = "atomic_reactor.plugins"
PHASE_PREBUILD = "prebuild"
PHASE_PREPUBLISH = "prepublish"
PHASE_POSTBUILD = "postbuild"
PHASE_EXIT = "exit"
#: the phases in the order they run
PHASES = (PHASE_PREBUILD, PHASE_PREPUBLISH, PHASE_POSTBUILD, PHASE_EXIT)


class Plugin:
    """Base of every plugin."""

    #: the name requests use for this plugin (set by every concrete plugin)
    key: ClassVar[str] = ""
    #: may the build go on when this plugin raises? (a request can override it)
    is_allowed_to_fail: ClassVar[bool] = True
    #: which phase the plugin belongs to (set by the phase classes)
    phase: ClassVar[str] = ""
    #: a hand-written JSON Schema for the arguments, instead of the derived one
    args_schema: ClassVar[dict[str, Any] | None] = None
    #: multi-platform builds: a pre-publish, post-build or exit plugin with this set runs
    #: once per platform, with ``workflow.builder``/``image_id``/``exported_image_sequence``/
    #: ``plugin_result()`` switched to that platform (``workflow.platform`` says which);
    #: others run once
    per_platform: ClassVar[bool] = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, **kwargs: Any) -> None:
        self.tasker = tasker
        self.workflow = workflow
        self.args = kwargs
        self.log = logging.getLogger(f"atomic_reactor.plugins.{self.key}")

    @property
    def builder(self) -> InsideBuilder:
        """The workflow's builder (there is one once the source was fetched)."""
        builder = self.workflow.builder
        if builder is None:
            raise AtomicReactorError(f"plugin {self.key} needs the source, which is not fetched")
        return builder

    @property
    def image_id(self) -> str:
        """The id of the built image (for plugins that run after the build)."""
        image_id = self.builder.image_id
        if image_id is None:
            raise AtomicReactorError(f"plugin {self.key} needs the built image, "
                                     "but nothing was built")
        return image_id

    @classmethod
    def preload(cls, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                args: Mapping[str, Any]) -> tuple[str, ...]:
        """The modules this plugin will import when it runs with ``args`` (its
        request's): a pre-publish or post-build plugin's are imported in the background
        while the engine builds, so that importing them is not on the path after the
        build. None by default."""
        return ()

    def run(self) -> Any:
        """Do the plugin's work; the return value is the plugin's result."""
        raise NotImplementedError(f"plugin {type(self).__name__} does not implement run()")

    def __str__(self) -> str:
        return self.key


#: 1.6 name of the common base
BuildPlugin = Plugin

#: 1.6 names of errors, kept as deprecated aliases (``from atomic_reactor.plugin import
#: PluginFailedException`` warns once, then works): name -> (class, new name)
_DEPRECATED: dict[str, tuple[type[AtomicReactorError], str]] = {
    "PluginFailedException": (PluginFailed, "atomic_reactor.errors.PluginFailed"),
    "BuildCanceledException": (BuildCancelled, "atomic_reactor.errors.BuildCancelled"),
    "AutoRebuildCanceledException": (AutoRebuildCanceled,
                                     "atomic_reactor.errors.AutoRebuildCanceled"),
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        cls, new = _DEPRECATED[name]
        warnings.warn(f"atomic_reactor.plugin.{name} is deprecated; use {new}",
                      DeprecationWarning, stacklevel=2)
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PreBuildPlugin(Plugin):
    """Runs before the build: prepares the source and the Dockerfile."""

    is_allowed_to_fail = False
    phase = PHASE_PREBUILD


class PrePublishPlugin(Plugin):
    """Runs after the build, before anything is published (tests, squash)."""

    is_allowed_to_fail = False
    phase = PHASE_PREPUBLISH


class PostBuildPlugin(Plugin):
    """Runs after the image is built (tags, push, compression, package lists)."""

    is_allowed_to_fail = False
    phase = PHASE_POSTBUILD


class ExitPlugin(Plugin):
    """Runs last, always: after success, failure or cancel (cleanup, metadata, mail)."""

    is_allowed_to_fail = True
    phase = PHASE_EXIT


#: argument schema of ``{"host[:port]": {"insecure": bool, "secret": path}}`` maps, as
#: tag_and_push and delete_from_registry take them
REGISTRIES_ARG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {
        "type": ["object", "null"],
        "properties": {
            "insecure": {"type": "boolean", "default": False},
            "secret": {"type": ["string", "null"]},
        },
        "additionalProperties": False,
    },
}


# -- requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginRequest:
    """One entry of a phase's plugin list.

    As JSON: ``{"name", "args", "required", "is_allowed_to_fail"}``.
    """

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    required: bool = True
    is_allowed_to_fail: bool | None = None

    _KEYS: ClassVar[frozenset[str]] = frozenset({"name", "args", "required",
                                                 "is_allowed_to_fail"})

    @classmethod
    def from_dict(cls, data: Any, phase: str = "") -> PluginRequest:
        where = f"{phase}_plugins" if phase else "plugin list"
        if not isinstance(data, Mapping):
            raise PluginConfigError(f"{where}: each entry must be an object with a 'name'")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise PluginConfigError(f"{where}: an entry has no 'name'")
        unknown = sorted(set(data) - cls._KEYS)
        if unknown:
            raise PluginConfigError(
                f"{where}: entry {name!r} has an unknown key {unknown[0]!r} "
                "(allowed: name, args, required, is_allowed_to_fail)", plugin=name)
        args = data.get("args")
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise PluginConfigError(f"plugin {name}: 'args' must be an object", plugin=name)
        for flag in ("required", "is_allowed_to_fail"):
            value = data.get(flag)
            if value is not None and not isinstance(value, bool):
                raise PluginConfigError(f"plugin {name}: {flag!r} must be true or false",
                                        plugin=name)
        return cls(name=name, args=dict(args), required=data.get("required", True) is not False,
                   is_allowed_to_fail=data.get("is_allowed_to_fail"))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "args": dict(self.args)}
        if not self.required:
            data["required"] = False
        if self.is_allowed_to_fail is not None:
            data["is_allowed_to_fail"] = self.is_allowed_to_fail
        return data


def parse_requests(conf: Iterable[Any] | None, phase: str) -> list[PluginRequest]:
    if conf is None:
        return []
    if isinstance(conf, (str, bytes, Mapping)) or not isinstance(conf, Iterable):
        raise PluginConfigError(f"{phase}_plugins must be a list of plugin requests")
    return [item if isinstance(item, PluginRequest) else PluginRequest.from_dict(item, phase)
            for item in conf]


# -- discovery --------------------------------------------------------------------------


#: loading plugin files: one thread at a time (a module half executed by one build
#: must not be picked up from sys.modules by another)
_load_lock = threading.RLock()
#: plugin-file module name -> how many live PluginLibrary objects use it. Unused
#: modules stay loaded (the same file gives the same classes) but only the
#: ``_IDLE_MODULES`` most recently used: a service writing a plugin file per job would
#: otherwise keep every one of them in sys.modules.
_module_users: dict[str, int] = {}
_idle_modules: OrderedDict[str, None] = OrderedDict()
_IDLE_MODULES = 8


def _use_module(module_name: str) -> None:
    _module_users[module_name] = _module_users.get(module_name, 0) + 1
    _idle_modules.pop(module_name, None)


def _release_module(module_name: str) -> None:
    with _load_lock:
        users = _module_users.get(module_name, 0) - 1
        if users > 0:
            _module_users[module_name] = users
            return
        _module_users.pop(module_name, None)
        if module_name not in sys.modules:
            return
        _idle_modules[module_name] = None
        while len(_idle_modules) > _IDLE_MODULES:
            oldest, _ = _idle_modules.popitem(last=False)
            sys.modules.pop(oldest, None)


def _file_module_name(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise PluginConfigError(f"plugin file {path} does not exist")
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise PluginConfigError(f"plugin file {path} cannot be read: {exc.strerror}") from None
    # path and content: the same file is loaded once, an edited one anew
    digest = hashlib.sha256(str(file.resolve()).encode() + b"\0" + content).hexdigest()[:16]
    return f"atomic_reactor_plugin_file_{file.stem}_{digest}"


def _load_file(path: str, user: object | None = None) -> list[type[Plugin]]:
    """The plugins a Python file defines; with ``user``, the module stays loaded (and is
    shared by every user of the same file) until the last user is garbage."""
    module_name = _file_module_name(path)
    with _load_lock:
        if user is None:
            return _load_module(Path(path), path, module_name)
        # counted before loading: a release running meanwhile (the garbage collector
        # finalising an old library) must not drop the module being handed out
        _use_module(module_name)
        try:
            found = _load_module(Path(path), path, module_name)
        except BaseException:
            _release_module(module_name)
            raise
        weakref.finalize(user, _release_module, module_name)
        return found


def _load_module(file: Path, path: str, module_name: str) -> list[type[Plugin]]:
    if module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        try:
            module = exec_file(file, module_name)
        except NotAModule:
            raise PluginConfigError(f"plugin file {path} is not a Python module") from None
        except Exception as exc:
            raise PluginConfigError(
                f"plugin file {path} failed to load: {type(exc).__name__}: {exc}") from exc
    found = [obj for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, Plugin) and obj.__module__ == module_name
             and getattr(obj, "key", None) and obj.phase]
    if not found:
        logger.warning("plugin file %s defines no plugin", path)
    return found


class PluginLibrary:
    """The plugins available to a build: entry points plus ``plugin_files``.

    Entry points are only imported when a request names them, and only listing every
    name scans the installed distributions (see :mod:`atomic_reactor._entrypoints`),
    which keeps start-up fast. A plugin loaded from a file overrides an entry point of the same key.
    """

    def __init__(self, plugin_files: Sequence[str] | None = None) -> None:
        self._loaded: dict[str, type[Plugin]] = {}
        for path in plugin_files or ():
            for plugin in _load_file(path, user=self):
                self._loaded[plugin.key] = plugin

    def names(self) -> list[str]:
        return sorted(set(entry_point_names(ENTRY_POINT_GROUP)) | set(self._loaded))

    def find(self, key: str) -> type[Plugin] | None:
        if key in self._loaded:
            return self._loaded[key]
        entry = find_entry_point(ENTRY_POINT_GROUP, key)
        if entry is None:
            return None
        try:
            plugin = entry.load()
        except Exception as exc:
            raise PluginConfigError(
                f"plugin {key} failed to load from {entry.value}: {type(exc).__name__}: {exc}",
                plugin=key) from exc
        if not (inspect.isclass(plugin) and issubclass(plugin, Plugin)):
            raise PluginConfigError(f"entry point {key} ({entry.value}) is not a plugin class",
                                    plugin=key)
        self._loaded[key] = plugin
        return plugin

    def get(self, key: str, phase: str) -> type[Plugin]:
        plugin = self.find(key)
        if plugin is None:
            raise PluginConfigError(f"unknown plugin {key!r} in {phase}_plugins", plugin=key)
        if plugin.phase == PHASE_EXIT and phase == PHASE_POSTBUILD:
            # 1.6 ran an exit plugin requested among the post-build plugins (an
            # ExitPlugin was a PostBuildPlugin there): so do we, with a warning
            logger.warning("plugin %s is an exit plugin; running it as a post-build plugin",
                           key)
            return plugin
        if plugin.phase != phase:
            raise PluginConfigError(
                f"plugin {key} is a {plugin.phase} plugin; it cannot run in {phase}_plugins",
                plugin=key)
        return plugin

    def resolve(self, requests: Sequence[PluginRequest], phase: str
                ) -> list[tuple[PluginRequest, type[Plugin] | None]]:
        """Check every request of a phase: plugin known (or not required), args valid."""
        resolved: list[tuple[PluginRequest, type[Plugin] | None]] = []
        for request in requests:
            plugin = self.find(request.name)
            if plugin is None and not request.required:
                logger.info("plugin %s is not available and not required: skipped", request.name)
                resolved.append((request, None))
                continue
            plugin = self.get(request.name, phase)
            validate_plugin_args(request.name, plugin, request.args)
            resolved.append((request, plugin))
        return resolved


# -- running a phase --------------------------------------------------------------------

#: plugin argument values 1.6 replaced by what they name when the plugin runs
SPECIAL_VALUES = ("BUILT_IMAGE_ID", "BUILD_DOCKERFILE_PATH", "BUILD_SOURCE_PATH", "BASE_IMAGE")


def special_values(workflow: DockerBuildWorkflow, value: Any) -> Any:
    """``value`` with 1.6's special strings replaced, in nested objects and lists too:
    ``BUILT_IMAGE_ID`` (the built image's id), ``BUILD_DOCKERFILE_PATH`` (the source's
    ``dockerfile_path``), ``BUILD_SOURCE_PATH`` (the fetched source) and ``BASE_IMAGE``
    (the final stage's base image). osbs-client's build jsons use them (e.g.
    ``all_rpm_packages`` ``{"image_id": "BUILT_IMAGE_ID"}``)."""
    if isinstance(value, Mapping):
        return {key: special_values(workflow, item) for key, item in value.items()}
    if isinstance(value, list):
        return [special_values(workflow, item) for item in value]
    if not isinstance(value, str) or value not in SPECIAL_VALUES:
        return value
    builder = workflow.builder
    if builder is None:
        return value
    if value == "BUILT_IMAGE_ID":
        return builder.image_id
    if value == "BUILD_DOCKERFILE_PATH":
        return builder.source.dockerfile_path
    if value == "BUILD_SOURCE_PATH":
        return builder.source.path
    return builder.base_image.to_str() if builder.base_image is not None else None



class PluginsRunner:
    """Runs the plugins of one phase, in order, recording timing, results and errors."""

    phase: str = ""

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 plugins_conf: Sequence[Any] | None, plugin_files: Sequence[str] | None = None,
                 phase: str | None = None) -> None:
        self.tasker = tasker
        self.workflow = workflow
        self.phase = phase or self.phase
        self.library = workflow.plugin_library if plugin_files is None else \
            PluginLibrary(plugin_files)
        self.requests = parse_requests(plugins_conf, self.phase)
        self.plugins = self.library.resolve(self.requests, self.phase)

    def run(self, keep_going: bool = False) -> dict[str, Any]:
        """Run every plugin; return ``{key: result}``.

        A plugin that is not allowed to fail stops the phase by raising
        :class:`~atomic_reactor.errors.PluginFailed` (unless ``keep_going``, which the
        exit phase uses: there every plugin runs whatever the others did).
        """
        results = self.workflow.plugin_results.setdefault(self.phase, {})
        first_failure: PluginFailed | None = None
        for request, plugin_class in self.plugins:
            if plugin_class is None:
                continue
            platforms = self._platforms_for(plugin_class)
            if not platforms:
                failure = self._run_one(request, plugin_class, results, keep_going)
                first_failure = first_failure or failure
                continue
            for platform in platforms:
                with self.workflow.platform_context(platform) as state:
                    failure = self._run_one(request, plugin_class,
                                            state.plugin_results.setdefault(self.phase, {}),
                                            keep_going, platform=str(platform))
                first_failure = first_failure or failure
        if first_failure is not None:
            raise first_failure
        return results

    def preloads(self) -> list[str]:
        """The modules this phase's plugins will import (:meth:`Plugin.preload`), for
        :class:`Preloading`."""
        modules: list[str] = []
        for request, plugin_class in self.plugins:
            if plugin_class is None:
                continue
            try:
                wanted = plugin_class.preload(self.tasker, self.workflow, request.args)
            except Exception as exc:  # a plugin's guess; its run() reports real errors
                logger.debug("plugin %s: no preload (%s)", request.name, exc)
                continue
            modules.extend(name for name in wanted if name not in modules)
        return modules

    def _platforms_for(self, plugin_class: type[Plugin]) -> list[Any]:
        """The platforms to run a plugin for one by one (none: run it once)."""
        platforms = list(getattr(self.workflow, "platforms", ()) or ())
        if not platforms or not plugin_class.per_platform or \
                self.phase == PHASE_PREBUILD or \
                not getattr(self.workflow, "platform_states", None):
            return []
        return platforms

    def _run_one(self, request: PluginRequest, plugin_class: type[Plugin],
                 results: dict[str, Any], keep_going: bool, platform: str | None = None
                 ) -> PluginFailed | None:
        """Run one plugin (for one platform); its failure, when ``keep_going``."""
        key = request.name
        label = f"{key}[{platform}]" if platform else key
        allowed = request.is_allowed_to_fail
        if allowed is None:
            allowed = plugin_class.is_allowed_to_fail
        started = time.monotonic()
        self.workflow.plugins_timestamps[label] = datetime.now(UTC).isoformat()
        logger.info("running %s plugin %s%s", self.phase, key,
                    f" for {platform}" if platform else "")
        try:
            args = special_values(self.workflow, effective_args(plugin_class, request.args))
            plugin = plugin_class(self.tasker, self.workflow, **args)
            results[key] = plugin.run()
        except (BuildCancelled, KeyboardInterrupt):
            self.workflow.plugins_errors[label] = "cancelled"
            raise
        except AutoRebuildCanceled as exc:
            # not a failure: the build stops here, on purpose (as in 1.6)
            self.workflow.plugins_errors[label] = str(exc)
            self.workflow.autorebuild_canceled = True
            results[key] = exc
            logger.info("%s", exc)
            raise
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            if not isinstance(exc, AtomicReactorError):
                message = f"{type(exc).__name__}: {message}"
                logger.debug("plugin %s raised", label, exc_info=True)
            self.workflow.plugins_errors[label] = message
            results[key] = exc
            if allowed:
                logger.warning("plugin %s failed (allowed to fail): %s", label, message)
                return None
            self.workflow.plugin_failed = True
            where = f"{key} ({platform})" if platform else key
            prefixed = message if message.startswith(f"{key}: ") else f"{where}: {message}"
            failure = PluginFailed(prefixed, plugin=key, cause=exc)
            logger.error("plugin %s failed: %s", label, message)
            if not keep_going:
                raise failure from exc
            return failure
        finally:
            self.workflow.plugins_durations[label] = round(time.monotonic() - started, 6)
        return None


#: how much nicer than the rest of the process (the build) the preloading thread is
PRELOAD_NICE = 10
#: seconds the preloading waits after it is started before it imports (less if it is
#: joined sooner): the engine's build starts meanwhile, and the first moments of a
#: build are when CPU beside it costs the build most (measured with buildah on two
#: cores: 150 ms of CPU at its start lengthened ``bud`` by about 90 ms, niced or not;
#: 0.6 s on, the same cost nothing measurable)
PRELOAD_DELAY = 0.5


class Preloading:
    """Modules imported in a daemon thread (none: no thread), after ``delay`` seconds
    or as soon as :meth:`join` is called, whichever comes first. A module that fails
    to import is left to the plugin that imports it when it runs, which then reports
    it."""

    def __init__(self, modules: Sequence[str], delay: float = 0.0) -> None:
        self.modules = tuple(modules)
        self._thread: threading.Thread | None = None
        self._go = threading.Event()
        if self.modules:
            self._thread = threading.Thread(target=self._run, args=(delay,),
                                            name="plugin-preload", daemon=True)
            self._thread.start()

    def _run(self, delay: float) -> None:
        import importlib
        import os

        if delay > 0:
            self._go.wait(delay)
        # this thread only (Linux schedules threads; its id is a task id): what the
        # engine's build does beside it on a small machine goes first, it still gets
        # CPU under load, and the whole CPU once the build is done
        with contextlib.suppress(AttributeError, OSError):
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me,
                           min(19, os.getpriority(os.PRIO_PROCESS, me) + PRELOAD_NICE))
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception as exc:
                logger.debug("preloading %s failed: %s", name, exc)

    def join(self) -> None:
        """Wait until the imports are done (then nothing imports in the background);
        a delay not over yet is cut short."""
        self._go.set()
        if self._thread is not None:
            self._thread.join()


class PreBuildPluginsRunner(PluginsRunner):
    phase = PHASE_PREBUILD


class PrePublishPluginsRunner(PluginsRunner):
    phase = PHASE_PREPUBLISH


class PostBuildPluginsRunner(PluginsRunner):
    phase = PHASE_POSTBUILD


class ExitPluginsRunner(PluginsRunner):
    phase = PHASE_EXIT

    def run(self, keep_going: bool = True) -> dict[str, Any]:
        return super().run(keep_going=keep_going)


class InputPluginsRunner:
    """Reads a build json from an *input*, as 1.6's input plugins did.

    ``plugins_conf`` is a one-entry list, ``[{"name": INPUT, "args": {...}}]``, where
    INPUT is ``path`` (args: ``path``), ``env`` (``env_name``), ``osv3`` or ``auto``
    (the one that applies), and ``args`` may also hold ``substitutions``
    (``{"key": "value"}`` or ``["key=value"]``). ``run()`` returns
    ``{INPUT: build_json}`` (for ``auto``, keyed by the input chosen); the build json
    is not validated here: :class:`~atomic_reactor.inner.DockerBuildWorkflow` does.
    The inputs are those of ``atomic-reactor inside-build`` (see
    ``atomic_reactor._buildcontainer.inside``); errors are
    :class:`~atomic_reactor.errors.BuildJsonError`.
    """

    def __init__(self, plugins_conf: Sequence[Mapping[str, Any]], *args: Any,
                 **kwargs: Any) -> None:
        requests = parse_requests(plugins_conf, "input")
        if len(requests) != 1:
            raise PluginConfigError("input plugins: give exactly one input "
                                    "(path, env, osv3 or auto)")
        self.plugins_conf = [request.to_dict() for request in requests]
        self.request = requests[0]
        self.autoinput = self.request.name == "auto"
        self.plugins_results: dict[str, Any] = {}

    def run(self, keep_going: bool = False) -> dict[str, Any]:
        from atomic_reactor._buildcontainer.inside import read_build_input
        from atomic_reactor._request import apply_substitutions
        from atomic_reactor.errors import BuildJsonError

        args = dict(self.request.args)
        substitutions = args.pop("substitutions", None) or {}
        if isinstance(substitutions, Mapping):
            substitutions = [f"{key}={value}" for key, value in substitutions.items()]
        if not isinstance(substitutions, (list, tuple)) or \
                not all(isinstance(item, str) for item in substitutions):
            raise BuildJsonError("input plugins: 'substitutions' must be an object or a "
                                 "list of KEY=VALUE strings")
        if not all(isinstance(value, str) for value in args.values()):
            raise BuildJsonError(f"input {self.request.name}: arguments must be strings")
        build_input = read_build_input(self.request.name, args)
        chosen, build_json = build_input.input, build_input.data
        apply_substitutions(build_json, list(substitutions))
        self.plugins_conf[0]["name"] = chosen
        self.plugins_results[chosen] = build_json
        return self.plugins_results
