"""Unit tests of plugin argument schemas and their validation (_plugin_args)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Optional

import pytest

from atomic_reactor._plugin_args import plugin_schema, validate_plugin_args
from atomic_reactor.errors import InputError, PluginConfigError

SECRET = "s3cr3t-hunter2-value"


class TypedPlugin:
    key = "typed"

    def __init__(
        self,
        tasker: Any,
        workflow: Any,
        name: str,
        labels: dict[str, str] | None = None,
        tags: list[str] | None = None,
        mode: Literal["fast", "slow"] = "fast",
        count: int = 3,
        ratio: float = 0.5,
        enabled: bool = False,
        legacy: Optional[str] = None,  # noqa: UP045 - the typing spelling must work too
        password: str | None = None,
        anything: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        del tasker, workflow, name, labels, tags, mode, count, ratio, enabled, legacy
        del password, anything, extra


class OpenPlugin:
    def __init__(self, tasker: Any, workflow: Any, known: int = 1, **kwargs: Any) -> None:
        del tasker, workflow, known, kwargs


class UntypedPlugin:
    def __init__(self, tasker, workflow, value=None):  # type: ignore[no-untyped-def]
        del tasker, workflow, value


class NoArgsPlugin:
    def __init__(self, tasker: Any, workflow: Any) -> None:
        del tasker, workflow


class ExplicitPlugin:
    args_schema = {
        "type": "object",
        "properties": {
            "registries": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"insecure": {"type": "boolean"},
                                   "secret": {"type": ["string", "null"]}},
                    "additionalProperties": False,
                },
            },
        },
        "required": ["registries"],
        "additionalProperties": False,
    }

    # the signature is ignored when args_schema is set
    def __init__(self, tasker: Any, workflow: Any, registries: int = 0, other: str = "") -> None:
        del tasker, workflow, registries, other


class TuplePlugin:
    def __init__(self, tasker: Any, workflow: Any, pair: tuple[str, int] = ("a", 1),
                 names: tuple[str, ...] = ()) -> None:
        del tasker, workflow, pair, names


# -- derived schemas -------------------------------------------------------------------------


def test_derived_schema_types() -> None:
    schema = plugin_schema(TypedPlugin)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name"]
    props = schema["properties"]
    assert set(props) == {"name", "labels", "tags", "mode", "count", "ratio", "enabled",
                          "legacy", "password", "anything", "extra"}
    assert "tasker" not in props
    assert "workflow" not in props
    assert props["name"] == {"type": "string"}
    assert props["labels"] == {
        "anyOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                  {"type": "null"}],
        "default": None,
    }
    assert props["tags"] == {"anyOf": [{"type": "array", "items": {"type": "string"}},
                                       {"type": "null"}], "default": None}
    assert props["mode"] == {"enum": ["fast", "slow"], "default": "fast"}
    assert props["count"] == {"type": "integer", "default": 3}
    assert props["ratio"] == {"type": "number", "default": 0.5}
    assert props["enabled"] == {"type": "boolean", "default": False}
    assert props["legacy"] == {"anyOf": [{"type": "string"}, {"type": "null"}],
                               "default": None}
    # Any accepts anything
    assert props["anything"] == {"default": None}
    assert props["extra"] == {"anyOf": [{"type": "object"}, {"type": "null"}],
                              "default": None}


def test_var_keyword_makes_schema_open() -> None:
    schema = plugin_schema(OpenPlugin)
    assert schema["additionalProperties"] is True
    assert schema["properties"] == {"known": {"type": "integer", "default": 1}}
    validate_plugin_args("open", OpenPlugin, {"known": 2, "whatever": [1, 2]})


def test_untyped_parameters_accept_anything() -> None:
    schema = plugin_schema(UntypedPlugin)
    assert schema["properties"] == {"value": {"default": None}}
    validate_plugin_args("untyped", UntypedPlugin, {"value": {"nested": [1]}})


def test_no_arguments() -> None:
    schema = plugin_schema(NoArgsPlugin)
    assert schema["properties"] == {}
    assert "required" not in schema
    validate_plugin_args("none", NoArgsPlugin, {})
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("none", NoArgsPlugin, {"x": 1})
    assert "it takes: none" in str(info.value)


def test_explicit_schema_wins_over_signature() -> None:
    schema = plugin_schema(ExplicitPlugin)
    assert schema == ExplicitPlugin.args_schema
    assert schema is not ExplicitPlugin.args_schema  # a copy
    validate_plugin_args("explicit", ExplicitPlugin,
                         {"registries": {"r:5000": {"insecure": True, "secret": None}}})
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("explicit", ExplicitPlugin, {"registries": {}, "other": ""})
    assert info.value.argument == "other"


# -- valid requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        {"name": "x"},
        {"name": "x", "labels": {"a": "b"}, "tags": ["1", "2"], "mode": "slow", "count": 0,
         "ratio": 1, "enabled": True, "legacy": None, "anything": object()},
        {"name": "x", "labels": None, "tags": None},
        {"name": "x", "ratio": 2.5, "extra": {"k": [1, {"z": None}]}},
    ],
)
def test_valid_arguments(args: dict[str, Any]) -> None:
    validate_plugin_args("typed", TypedPlugin, args)


# -- invalid requests ------------------------------------------------------------------------


def test_unknown_argument_names_plugin_and_argument() -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("typed", TypedPlugin, {"name": "x", "colour": "red"})
    error = info.value
    assert error.plugin == "typed"
    assert error.argument == "colour"
    assert "typed" in str(error)
    assert "'colour'" in str(error)
    assert "labels" in str(error)  # says what it takes
    assert isinstance(error, InputError)
    assert error.exit_code == 2


def test_missing_required_argument() -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("typed", TypedPlugin, {"labels": {}})
    assert info.value.plugin == "typed"
    assert info.value.argument == "name"
    assert "needs the argument 'name'" in str(info.value)


def test_args_must_be_a_mapping() -> None:
    with pytest.raises(PluginConfigError, match="'args' must be an object"):
        validate_plugin_args("typed", TypedPlugin, ["name"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "argument", "expected"),
    [
        ({"name": 5}, "name", "must be of type string, not integer"),
        ({"name": "x", "count": "3"}, "count", "must be of type integer, not string"),
        ({"name": "x", "count": True}, "count", "must be of type integer, not boolean"),
        ({"name": "x", "count": 1.5}, "count", "must be of type integer, not number"),
        ({"name": "x", "enabled": "true"}, "enabled", "must be of type boolean, not string"),
        ({"name": "x", "ratio": "1"}, "ratio", "must be of type number, not string"),
        ({"name": "x", "mode": "medium"}, "mode", "must be one of 'fast', 'slow'"),
        ({"name": "x", "legacy": 3}, "legacy", "must be string or null, not integer"),
        ({"name": "x", "tags": "a,b"}, "tags", "not string"),
    ],
)
def test_wrong_types(args: dict[str, Any], argument: str, expected: str) -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("typed", TypedPlugin, args)
    assert info.value.plugin == "typed"
    assert info.value.argument == argument
    message = str(info.value)
    assert message.startswith("plugin typed: argument ")
    assert argument in message
    assert expected in message


def test_nested_wrong_type_names_the_path() -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("explicit", ExplicitPlugin,
                             {"registries": {"r:5000": {"insecure": "yes"}}})
    assert info.value.argument == "registries"
    message = str(info.value)
    assert "registries.r:5000.insecure" in message
    assert "must be of type boolean, not string" in message
    assert "yes" not in message


def test_wrong_type_message_does_not_echo_the_value() -> None:
    cases: list[dict[str, Any]] = [
        {"name": "x", "count": SECRET},
        {"name": "x", "mode": SECRET},
        {"name": "x", "enabled": SECRET},
        {"name": "x", "password": [SECRET]},
        {"name": "x", "labels": SECRET},
        {"name": "x", "tags": [SECRET, 1]},
        {"name": {"secret": SECRET}},
    ]
    for args in cases:
        with pytest.raises(PluginConfigError) as info:
            validate_plugin_args("typed", TypedPlugin, args)
        assert SECRET not in str(info.value), args
        assert SECRET not in repr(info.value.args), args
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("explicit", ExplicitPlugin,
                             {"registries": {"r": {"secret": 1, "insecure": SECRET}}})
    assert SECRET not in str(info.value)


class ListPlugin:
    def __init__(self, tasker: Any, workflow: Any, items: list[str],
                 env: dict[str, str]) -> None:
        del tasker, workflow, items, env


def test_list_item_wrong_type_names_the_index() -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("lists", ListPlugin, {"items": ["ok", 7], "env": {}})
    assert info.value.argument == "items"
    assert "argument items[1] must be of type string, not integer" in str(info.value)


def test_dict_value_wrong_type_names_the_key() -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("lists", ListPlugin, {"items": [], "env": {"HOME": SECRET,
                                                                         "N": 1}})
    assert info.value.argument == "env"
    assert "argument env.N must be of type string, not integer" in str(info.value)
    assert SECRET not in str(info.value)


def test_optional_dict_with_wrong_value_type_names_the_entry() -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("typed", TypedPlugin, {"name": "x", "labels": {"k": 1}})
    message = str(info.value)
    assert "labels.k" in message
    assert "must be of type string, not integer" in message


def test_tuple_annotations() -> None:
    validate_plugin_args("tuples", TuplePlugin, {"pair": ["a", 1]})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("tuples", TuplePlugin, {"names": [1]})


class RichSchemaPlugin:
    """A hand-written schema with keywords beyond the derived subset (jsonschema path)."""

    args_schema = {
        "type": "object",
        "properties": {
            "token": {"type": "string", "minLength": 64},
            "url": {"type": "string", "pattern": "^https://"},
            "count": {"type": "integer", "minimum": 1},
        },
        "required": ["token"],
        "additionalProperties": False,
    }

    def __init__(self, tasker: Any, workflow: Any, **kwargs: Any) -> None:
        del tasker, workflow, kwargs


def test_rich_schema_valid() -> None:
    validate_plugin_args("rich", RichSchemaPlugin,
                         {"token": "t" * 64, "url": "https://x", "count": 2})


@pytest.mark.parametrize(
    ("args", "argument", "expected"),
    [
        ({"token": SECRET}, "token", "minLength"),
        ({"token": "t" * 64, "url": "http://" + SECRET}, "url", "pattern"),
        ({"token": "t" * 64, "count": 0}, "count", "minimum"),
        ({"token": 12345}, "token", "must be of type string, not integer"),
        ({"token": "t" * 64, "extra": SECRET}, "extra", "takes no argument 'extra'"),
        ({"url": "https://x"}, "token", "needs the argument 'token'"),
    ],
)
def test_rich_schema_errors_do_not_echo_values(args: dict[str, Any], argument: str,
                                               expected: str) -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args("rich", RichSchemaPlugin, args)
    assert info.value.plugin == "rich"
    assert info.value.argument == argument
    assert expected in str(info.value)
    assert SECRET not in str(info.value)
