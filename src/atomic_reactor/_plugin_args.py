"""Plugin argument declarations, their JSON Schema, and validation.

A plugin declares its arguments as keyword parameters of ``__init__`` after
``tasker`` and ``workflow``, with type hints and defaults::

    def __init__(self, tasker, workflow, labels: dict[str, str] | None = None,
                 dont_overwrite: bool = False): ...

From that declaration we derive a JSON Schema (``plugin_schema``), which checks
every request before anything is pulled or built. A plugin may instead set the
class attribute ``args_schema`` to a hand-written schema.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from atomic_reactor.errors import PluginConfigError

__all__ = ["effective_args", "plugin_schema", "validate_plugin_args"]

_SKIP = ("self", "tasker", "workflow")


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is Any or hint is inspect.Parameter.empty or hint is object:
        return {}
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(arg) for arg in args]
        if any(option == {} for option in options):
            return {}
        return {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": "string"}
    base = origin or hint
    if base is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _type_schema(args[0])
            return {"type": "array", "items": item} if item else {"type": "array"}
        if args:
            return {"type": "array", "prefixItems": [_type_schema(a) for a in args],
                    "minItems": len(args), "maxItems": len(args)}
        return {"type": "array"}
    if isinstance(base, type) and issubclass(base, Mapping):
        schema: dict[str, Any] = {"type": "object"}
        if len(args) == 2 and _type_schema(args[1]):
            schema["additionalProperties"] = _type_schema(args[1])
        return schema
    if isinstance(base, type) and issubclass(base, Sequence) and not issubclass(base, str):
        schema = {"type": "array"}
        if args and args[-1] is not Ellipsis and _type_schema(args[0]):
            schema["items"] = _type_schema(args[0])
        return schema
    return {}


def _parameters(plugin: type) -> list[inspect.Parameter]:
    return list(inspect.signature(plugin.__init__).parameters.values())  # type: ignore[misc]


def _argument_hints(init: Any) -> dict[str, Any]:
    """The resolved type hints of a plugin's arguments (``tasker`` and ``workflow`` left
    out: plugins annotate them with names imported only for type checking)."""
    annotations = {name: value for name, value in getattr(init, "__annotations__", {}).items()
                   if name not in _SKIP and name != "return"}
    holder = types.SimpleNamespace(__annotations__=annotations)
    try:
        return typing.get_type_hints(holder, globalns=getattr(init, "__globals__", None))
    except Exception:  # unresolvable annotations: fall back to no type checks
        return {}


def plugin_schema(plugin: type) -> dict[str, Any]:
    """The JSON Schema of ``plugin``'s arguments."""
    explicit = getattr(plugin, "args_schema", None)
    if explicit is not None:
        return dict(explicit)
    hints = _argument_hints(plugin.__init__)  # type: ignore[misc]
    properties: dict[str, Any] = {}
    required: list[str] = []
    open_ended = False
    for param in _parameters(plugin):
        if param.name in _SKIP or param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
            continue
        prop = _type_schema(hints.get(param.name, inspect.Parameter.empty))
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            try:
                import json

                json.dumps(param.default)
                prop = {**prop, "default": param.default}
            except (TypeError, ValueError):
                pass
        properties[param.name] = prop
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": open_ended,
    }
    if required:
        schema["required"] = required
    return schema


def _accepts_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping) or not schema:
        return True
    if "anyOf" in schema:
        return any(_accepts_null(option) for option in schema["anyOf"])
    types = schema.get("type")
    if types is None:
        return "enum" not in schema or None in schema["enum"]
    return "null" in ([types] if isinstance(types, str) else types)


def effective_args(plugin: type, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a plugin gets: an explicit ``null`` for an optional argument that
    does not take null means "the default", as in 1.6 (the key is left out)."""
    schema = plugin_schema(plugin)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    return {name: value for name, value in args.items()
            if not (value is None and name in properties and name not in required
                    and not _accepts_null(properties[name]))}


def _describe_path(path: Sequence[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def validate_plugin_args(key: str, plugin: type, args: Mapping[str, Any]) -> None:
    """Raise :class:`PluginConfigError` naming the plugin and argument when ``args`` is wrong."""
    if not isinstance(args, Mapping):
        raise PluginConfigError(f"plugin {key}: 'args' must be an object, "
                                f"not {type(args).__name__}", plugin=key)
    schema = plugin_schema(plugin)
    properties = schema.get("properties", {})
    args = effective_args(plugin, args)
    if schema.get("additionalProperties") is False:
        unknown = sorted(set(args) - set(properties))
        if unknown:
            accepted = ", ".join(sorted(properties)) or "none"
            raise PluginConfigError(
                f"plugin {key} takes no argument {unknown[0]!r} (it takes: {accepted})",
                plugin=key, argument=unknown[0])
    missing = [name for name in schema.get("required", []) if name not in args]
    if missing:
        raise PluginConfigError(f"plugin {key} needs the argument {missing[0]!r}",
                                plugin=key, argument=missing[0])
    if _simple(schema):
        problem = _check(schema, dict(args), [])
        if problem is not None:
            path, text = problem
            raise PluginConfigError(
                f"plugin {key}: argument {_describe_path(path) or '(args)'} {text}",
                plugin=key, argument=str(path[0]) if path else None)
        return
    import jsonschema  # only for hand-written schemas using keywords we do not check

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(args)))
    if error is not None:
        where = _describe_path(list(error.absolute_path))
        argument = str(error.absolute_path[0]) if error.absolute_path else None
        raise PluginConfigError(
            f"plugin {key}: argument {where or '(args)'} {_explain(error)}",
            plugin=key, argument=argument)


# A small checker for the schema subset the derived declarations produce (and simple
# hand-written ones): importing jsonschema costs ~80 ms of every build's start-up.
_SIMPLE_KEYS = frozenset({"type", "enum", "anyOf", "properties", "additionalProperties",
                          "required", "items", "default", "description", "title"})
_TYPE_CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, Mapping),
    "array": lambda v: isinstance(v, (list, tuple)),
    "null": lambda v: v is None,
}


def _simple(schema: Any) -> bool:
    if not isinstance(schema, Mapping) or not set(schema) <= _SIMPLE_KEYS:
        return False
    types = schema.get("type", [])
    if any(t not in _TYPE_CHECKS for t in ([types] if isinstance(types, str) else types)):
        return False
    children = list(schema.get("properties", {}).values()) + list(schema.get("anyOf", []))
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), Mapping):
            children.append(schema[key])
    return all(_simple(child) for child in children)


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _check(schema: Mapping[str, Any], value: Any, path: list[Any]
           ) -> tuple[list[Any], str] | None:
    """The first problem as (path, text), or None. Never echoes the value."""
    if "anyOf" in schema:
        problems = [(_check(option, value, path), option) for option in schema["anyOf"]]
        if all(problem is not None for problem, _ in problems):
            for problem, option in problems:  # the option of the value's type says most
                wanted = option.get("type")
                if wanted is not None and any(
                        _TYPE_CHECKS[t](value)
                        for t in ([wanted] if isinstance(wanted, str) else wanted)):
                    return problem
            kinds = [str(o.get("type") or ("one of " + repr(o["enum"]) if "enum" in o
                                           else "other")) for o in schema["anyOf"]]
            return path, f"must be {' or '.join(kinds)}, not {_kind(value)}"
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_TYPE_CHECKS[t](value) for t in allowed):
            return path, f"must be of type {' or '.join(allowed)}, not {_kind(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return path, "must be one of " + ", ".join(repr(v) for v in schema["enum"])
    if isinstance(value, Mapping):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                return path, f"needs the key {name!r}"
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                problem = _check(properties[name], item, [*path, name])
            elif extra is False:
                return [*path, name], "is not allowed here"
            elif isinstance(extra, Mapping):
                problem = _check(extra, item, [*path, name])
            else:
                problem = None
            if problem is not None:
                return problem
    if isinstance(value, (list, tuple)) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problem = _check(schema["items"], item, [*path, index])
            if problem is not None:
                return problem
    return None


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               list: "array", dict: "object", type(None): "null"}


def _explain(error: Any) -> str:
    """Say what is wrong without echoing the value (it may be a secret)."""
    actual = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
    if error.validator == "type":
        expected = error.validator_value
        if isinstance(expected, list):
            expected = " or ".join(expected)
        return f"must be of type {expected}, not {actual}"
    if error.validator == "enum":
        return "must be one of " + ", ".join(repr(v) for v in error.validator_value)
    if error.validator == "anyOf":
        kinds = [s.get("type") or ("one of " + repr(s["enum"]) if "enum" in s else "other")
                 for s in error.validator_value]
        return f"must be {' or '.join(str(k) for k in kinds)}, not {actual}"
    if error.validator in ("required", "additionalProperties"):
        return str(error.message)
    return f"is invalid ({error.validator} {error.validator_value!r})"
