"""A build request: what the API functions, ``build json`` and ``inside-build`` take.

One frozen object, validated once where the request enters (API call, CLI,
build json file), and turned into the workflow's arguments here. Its typed parts
(:attr:`BuildRequest.source_spec`, :attr:`BuildRequest.retry_policy`) are what
the workflow and the build container take: they trust them and check nothing
again. The checks of single values (:func:`parse_retry`, :func:`parse_epoch`) are
the ones :class:`~atomic_reactor.inner.DockerBuildWorkflow` applies to raw values
when it is called directly (the 1.6 API).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atomic_reactor._engine.types import BuildSecret
from atomic_reactor._platforms import parse_platforms
from atomic_reactor._reference import ImageName
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import BuildJsonError, InputError
from atomic_reactor.source import SourceSpec

__all__ = ["BuildRequest", "apply_substitutions", "load_build_json", "parse_epoch",
           "parse_retry", "parse_secret", "parse_value"]

PLUGIN_LISTS = ("prebuild_plugins", "prepublish_plugins", "postbuild_plugins", "exit_plugins")
_OPTIONS = ("retry", "buildargs", "use_cache", "log_file", "reproducible", "source_date_epoch",
            "engine", "labels", "target", "pull", "secrets", "platforms")
#: what ``sbom``/``provenance`` (true) add after the push
_ATTACH = {"sbom": "sbom", "provenance": "provenance"}
_CONTAINER_KEYS = ("build_image", "push_buildroot_to", "method")
#: keys osbs-client wrote into 1.6 build jsons: accepted, passed on (the workflow logs
#: that they have no effect)
_LEGACY_KEYS = ("openshift_build_selflink", "client_version")
#: how tag_and_push pushes (its arguments of the same names)
PUSH_KEYS = ("push_method", "compression", "compression_level", "manifest_format")
_PUSH_CHOICES: dict[str, tuple[str, ...]] = {
    "push_method": ("registry", "engine"),
    "compression": ("gzip", "zstd", "none"),
    "manifest_format": ("docker", "oci"),
}
_LEVELS = {"gzip": (1, 9), "zstd": (1, 19)}
_KEYS = ("source", "image", "parent_registry", "target_registries", "parent_registry_insecure",
         "target_registries_insecure", "dont_pull_base_image", "plugin_files",
         *PLUGIN_LISTS, *_OPTIONS, *_CONTAINER_KEYS, *_ATTACH, *PUSH_KEYS,
         *_LEGACY_KEYS)


def parse_retry(value: Any) -> RetryPolicy | None:
    """``retry`` settings (a mapping of :class:`RetryPolicy` fields, or a policy)."""
    if value is None or isinstance(value, RetryPolicy):
        return value
    if not isinstance(value, Mapping):
        raise InputError(f"invalid retry settings: expected an object, not "
                         f"{type(value).__name__}")
    try:
        return RetryPolicy(**value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"invalid retry settings: {exc}") from None


#: the last second of the year 9999 (what an RFC 3339 time can say)
MAX_EPOCH = 253402300799


def parse_epoch(value: Any) -> int | None:
    """``source_date_epoch``: whole seconds since 1970, 0 or more (up to the year 9999)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 0 <= value <= MAX_EPOCH):
        raise InputError("source_date_epoch must be a whole number of seconds since 1970 "
                         f"(0 to {MAX_EPOCH})")
    return value


def _check(data: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], what: str) -> None:
    value = data.get(key)
    if value is not None and not isinstance(value, kinds):
        raise BuildJsonError(f"build json: {key!r} must be {what}, not {type(value).__name__}")


def _push_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """The push keys of ``data``, checked (choices, level range, zstd needs OCI)."""
    push = {key: data[key] for key in PUSH_KEYS if data.get(key) is not None}
    for key, choices in _PUSH_CHOICES.items():
        if key in push and push[key] not in choices:
            raise BuildJsonError(f"build json: {key!r} must be one of {', '.join(choices)}, "
                                 f"not {push[key]!r}")
    level = push.get("compression_level")
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int):
            raise BuildJsonError("build json: 'compression_level' must be a whole number")
        compression = push.get("compression", "gzip")
        if compression not in _LEVELS:
            raise BuildJsonError(f"build json: 'compression_level' needs a compression "
                                 f"(gzip or zstd), not {compression!r}")
        lowest, highest = _LEVELS[compression]
        if not lowest <= level <= highest:
            raise BuildJsonError(f"build json: {compression} compression levels are "
                                 f"{lowest} to {highest}, not {level}")
    if push.get("compression") == "zstd" and push.get("manifest_format") == "docker":
        raise BuildJsonError("build json: zstd layers need an OCI manifest "
                             "('manifest_format': 'oci')")
    return push


@dataclass(frozen=True)
class BuildRequest:
    """A validated build request."""

    source: Mapping[str, Any]
    image: str
    parent_registry: str | None = None
    target_registries: tuple[str, ...] = ()
    parent_registry_insecure: bool = False
    target_registries_insecure: bool = False
    dont_pull_base_image: bool = False
    plugins: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    plugin_files: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    build_image: str | None = None
    push_buildroot_to: str | None = None
    sbom: bool = False
    provenance: bool = False
    #: push_method, compression, compression_level, manifest_format (for tag_and_push)
    push: Mapping[str, Any] = field(default_factory=dict)
    #: the validated source (made from ``source`` unless given)
    source_spec: SourceSpec | None = field(default=None, compare=False)
    #: the validated ``retry`` option (None: the default policy)
    retry_policy: RetryPolicy | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.source_spec is None:
            object.__setattr__(self, "source_spec", SourceSpec.from_dict(self.source))
        if self.retry_policy is None:
            object.__setattr__(self, "retry_policy", parse_retry(self.options.get("retry")))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> BuildRequest:
        """Validate a build json document (or API keyword arguments)."""
        if not isinstance(data, Mapping):
            raise BuildJsonError("build json must be a JSON object")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise BuildJsonError(f"build json: unknown key {unknown[0]!r}")
        for required in ("source", "image"):
            if not data.get(required):
                raise BuildJsonError(f"build json: {required!r} is missing")
        _check(data, "source", Mapping, "an object")
        _check(data, "image", (str, ImageName), "a string")
        ImageName.parse(data["image"])
        _check(data, "parent_registry", str, "a string")
        for flag in ("parent_registry_insecure", "target_registries_insecure",
                     "dont_pull_base_image", "use_cache", "reproducible", *_ATTACH):
            _check(data, flag, bool, "true or false")
        targets = data.get("target_registries") or ()
        if isinstance(targets, str) or not isinstance(targets, Sequence) or \
                not all(isinstance(t, str) and t for t in targets):
            raise BuildJsonError("build json: 'target_registries' must be a list of registries")
        plugins: dict[str, tuple[Mapping[str, Any], ...]] = {}
        for key in PLUGIN_LISTS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
                raise BuildJsonError(f"build json: {key!r} must be a list of plugin requests")
            plugins[key] = tuple(value)
        files = data.get("plugin_files") or ()
        if not isinstance(files, (list, tuple)) or not all(isinstance(f, str) for f in files):
            raise BuildJsonError("build json: 'plugin_files' must be a list of paths")
        try:
            parse_epoch(data.get("source_date_epoch"))
        except InputError as exc:
            raise BuildJsonError(f"build json: {exc}") from None
        for legacy in _LEGACY_KEYS:
            _check(data, legacy, str, "a string")
        _check(data, "retry", Mapping, "an object")
        _check(data, "log_file", str, "a string")
        for mapping in ("buildargs", "labels"):
            _check(data, mapping, Mapping, "an object")
            if not all(isinstance(k, str) and k and isinstance(v, str)
                       for k, v in (data.get(mapping) or {}).items()):
                raise BuildJsonError(f"build json: {mapping!r} must map names to strings")
        _check(data, "target", str, "a string (a stage name)")
        _check(data, "pull", bool, "true or false")
        if data.get("engine") is not None:
            from atomic_reactor._engine.select import validate_engine_name

            validate_engine_name(data["engine"])
        secrets = _secrets(data.get("secrets"))
        options = {**{k: data[k] for k in (*_OPTIONS, *_LEGACY_KEYS)
                      if data.get(k) is not None},
                   **({"secrets": secrets} if secrets else {})}
        if "platforms" in options:
            try:
                platforms = parse_platforms(options["platforms"])
            except InputError as exc:
                raise BuildJsonError(f"build json: 'platforms': {exc}") from None
            if platforms:
                options["platforms"] = [str(p) for p in platforms]
            else:
                del options["platforms"]
        return cls(
            source=dict(data["source"]),
            image=str(data["image"]),
            parent_registry=data.get("parent_registry") or None,
            target_registries=tuple(targets),
            parent_registry_insecure=bool(data.get("parent_registry_insecure", False)),
            target_registries_insecure=bool(data.get("target_registries_insecure", False)),
            dont_pull_base_image=bool(data.get("dont_pull_base_image", False)),
            plugins=plugins,
            plugin_files=tuple(files),
            options=options,
            build_image=data.get("build_image"),
            push_buildroot_to=data.get("push_buildroot_to"),
            sbom=bool(data.get("sbom", False)),
            provenance=bool(data.get("provenance", False)),
            push=_push_settings(data),
        )

    def plugin_lists(self) -> dict[str, list[dict[str, Any]]]:
        """The plugin lists with the defaults this request implies.

        ``pull_base_image`` runs first (unless ``dont_pull_base_image``) and
        ``tag_and_push`` last (when there are target registries), unless the lists
        already name them, in which case the listed request wins. ``reproducible``
        puts the ``reproducible`` plugin first in the post-build list (after squash and
        the image tests, before anything tags, exports or pushes); ``sbom`` and
        ``provenance`` add their plugins after the push.
        """
        lists = {key: [dict(item) if isinstance(item, Mapping) else item
                       for item in self.plugins.get(key, ())] for key in PLUGIN_LISTS}

        def named(key: str, name: str) -> bool:
            return any(isinstance(item, Mapping) and item.get("name") == name
                       for item in lists[key])

        if not self.dont_pull_base_image and not named("prebuild_plugins", "pull_base_image"):
            args: dict[str, Any] = {}
            if self.parent_registry:
                args["parent_registry"] = self.parent_registry
                args["parent_registry_insecure"] = self.parent_registry_insecure
            lists["prebuild_plugins"].insert(0, {"name": "pull_base_image", "args": args})
        if self.target_registries and not named("postbuild_plugins", "tag_and_push"):
            registries = {registry: {"insecure": self.target_registries_insecure}
                          for registry in self.target_registries}
            lists["postbuild_plugins"].append(
                {"name": "tag_and_push", "args": {"registries": registries, **self.push}})
        elif self.push:
            # a listed tag_and_push takes the request's push settings it does not set
            for item in lists["postbuild_plugins"]:
                if isinstance(item, dict) and item.get("name") == "tag_and_push":
                    given = item.get("args")
                    item["args"] = {**self.push,
                                    **(dict(given) if isinstance(given, Mapping) else {})}
        if self.options.get("reproducible") and not named("postbuild_plugins", "reproducible"):
            lists["postbuild_plugins"].insert(0, {"name": "reproducible", "args": {}})
        for flag, plugin in _ATTACH.items():
            if getattr(self, flag) and not named("postbuild_plugins", plugin):
                lists["postbuild_plugins"].append({"name": plugin, "args": {}})
        return lists

    def workflow_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~atomic_reactor.inner.DockerBuildWorkflow`
        (the source as its :class:`SourceSpec`, ``retry`` as a :class:`RetryPolicy`)."""
        kwargs: dict[str, Any] = {"source": self.source_spec, "image": self.image,
                                  "plugin_files": list(self.plugin_files)}
        kwargs.update(self.plugin_lists())
        kwargs.update(self.options)
        if self.retry_policy is not None:
            kwargs["retry"] = self.retry_policy
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": dict(self.source), "image": self.image,
            "parent_registry": self.parent_registry,
            "target_registries": list(self.target_registries),
            "parent_registry_insecure": self.parent_registry_insecure,
            "target_registries_insecure": self.target_registries_insecure,
            "dont_pull_base_image": self.dont_pull_base_image,
            "plugin_files": list(self.plugin_files),
        }
        for flag in _ATTACH:
            if getattr(self, flag):
                data[flag] = True
        for key, items in self.plugins.items():
            data[key] = [dict(i) for i in items]
        data.update(self.options)
        if "secrets" in data:  # the typed secrets as a build json names them
            data["secrets"] = [secret.to_dict() for secret in data["secrets"]]
        data.update(self.push)
        return data


def parse_secret(text: str) -> dict[str, str]:
    """``id=ID,src=PATH`` or ``id=ID,env=VARIABLE`` (``--secret``) as a mapping."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("id", "src", "env", "type") or key in fields or not value:
            raise BuildJsonError(f"secret {text!r} is not of the form id=ID,src=PATH or "
                                 "id=ID,env=VARIABLE")
        fields[key] = value.strip()
    if fields.pop("type", "file") not in ("file", "env"):
        raise BuildJsonError(f"secret {text!r}: type must be file or env")
    return fields


def _secrets(value: object) -> tuple[BuildSecret, ...]:
    """Validated build secrets (``RUN --mount=type=secret``): each has an ``id`` and
    exactly one of ``src`` (a readable file) or ``env`` (a set variable). The value
    is read here, once, and registered as a secret at once, so nothing prints it from
    here on; the typed secrets say so (``registered``) and the engine reads nothing
    again."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise BuildJsonError("build json: 'secrets' must be a list of "
                             "{\"id\": ..., \"src\"|\"env\": ...}")
    import os

    from atomic_reactor._secrets import register_secret

    checked: list[BuildSecret] = []
    seen: set[str] = set()
    for item in value:
        entry = parse_secret(item) if isinstance(item, str) else \
            item.to_dict() if isinstance(item, BuildSecret) else item
        if not isinstance(entry, Mapping) or set(entry) - {"id", "src", "env"} or \
                not all(isinstance(v, str) and v for v in entry.values()):
            raise BuildJsonError("build json: a secret must be {\"id\": ..., \"src\": PATH} "
                                 "or {\"id\": ..., \"env\": VARIABLE}")
        secret_id = entry.get("id")
        if not secret_id:
            raise BuildJsonError("build secret without an id")
        if ("src" in entry) == ("env" in entry):
            raise BuildJsonError(f"build secret {secret_id!r}: give either src (a file) or "
                                 "env (a variable)")
        if secret_id in seen:
            raise BuildJsonError(f"build secret {secret_id!r} is given twice")
        seen.add(secret_id)
        if "src" in entry:
            src = os.path.abspath(os.path.expanduser(entry["src"]))
            try:
                with open(src, encoding="utf-8", errors="replace") as handle:
                    register_secret(handle.read().strip() or None)
            except OSError as exc:
                raise BuildJsonError(f"build secret {secret_id!r}: cannot read {src} "
                                     f"({exc.strerror or type(exc).__name__})") from None
            checked.append(BuildSecret(secret_id, src=src, registered=True))
        else:
            variable = entry["env"]
            if variable not in os.environ:
                raise BuildJsonError(f"build secret {secret_id!r}: the environment variable "
                                     f"{variable} is not set")
            register_secret(os.environ[variable])
            checked.append(BuildSecret(secret_id, env=variable, registered=True))
    return tuple(checked)


def load_build_json(path: str | Path) -> dict[str, Any]:
    """Read a build json file; :class:`BuildJsonError` with the line when it is malformed."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BuildJsonError(f"build json {file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildJsonError(f"cannot read build json {file}: {exc}") from None
    return parse_build_json(text, str(file))


def parse_build_json(text: str, where: str = "build json") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BuildJsonError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise BuildJsonError(f"{where} must hold a JSON object")
    return data


def parse_value(text: str) -> Any:
    """A substituted value: JSON literals (true, 3, {...}, [...]) or else the string."""
    stripped = text.strip()
    if stripped in ("true", "false", "null") or stripped[:1] in ("{", "[") or \
            stripped.lstrip("-").isdigit():
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    return text


def apply_substitutions(data: dict[str, Any], substitutions: Sequence[str], *,
                        parse: bool = True) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` substitutions with dotted keys.

    ``prebuild_plugins.NAME.ARG=VALUE`` sets argument ARG of plugin NAME in that
    list; other dotted keys (``source.provider_params.git_commit=…``) set nested keys.
    With ``parse=False`` every value is set as the string it is (secrets: ``1234``
    stays a string).
    """
    for item in substitutions:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise BuildJsonError(f"substitution {key or item!r} is not of the form KEY=VALUE")
        value = parse_value(raw) if parse else raw
        parts = key.split(".")
        if parts[0] in PLUGIN_LISTS and len(parts) >= 2:
            plugins = data.setdefault(parts[0], [])
            if not isinstance(plugins, list):
                raise BuildJsonError(f"substitution {key}: {parts[0]!r} is not a list")
            matches = [p for p in plugins if isinstance(p, dict) and p.get("name") == parts[1]]
            if not matches:
                raise BuildJsonError(f"substitution {key}: no plugin {parts[1]!r} in {parts[0]}")
            if len(parts) == 2:
                raise BuildJsonError(f"substitution {key}: name the argument "
                                     f"({parts[0]}.{parts[1]}.ARG=VALUE)")
            if matches[0].get("args") is None:
                matches[0]["args"] = {}
            target = matches[0]["args"]
            if not isinstance(target, dict):
                raise BuildJsonError(f"substitution {key}: the args of {parts[1]!r} "
                                     "are not an object")
            parts = parts[2:]
        else:
            target = data
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise BuildJsonError(f"substitution {key}: {part!r} is not an object")
            target = nested
        target[parts[-1]] = value
    return data
