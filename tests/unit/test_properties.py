"""Property-based tests (hypothesis): image names print and parse back; any build json
and any plugin arguments give a result or one of the project's own errors, never
another exception."""

from __future__ import annotations

import contextlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._request import BuildRequest, apply_substitutions, parse_build_json
from atomic_reactor.errors import AtomicReactorError, InvalidImageName
from atomic_reactor.plugin import PHASES, PluginLibrary, parse_requests
from atomic_reactor.util import ImageName

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
#: per plugin (there are ~30): fewer examples each
PLUGIN_SETTINGS = settings(max_examples=25, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow])

# -- image names ---------------------------------------------------------------------------

_alnum = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(lambda first, rest: first + "".join(s + p for s, p in rest),
                      _alnum, st.lists(st.tuples(_separator, _alnum), max_size=2))
hostname = st.builds(".".join,
                     st.lists(st.text(string.ascii_lowercase + string.digits, min_size=1,
                                      max_size=6), min_size=2, max_size=3))
registry = st.one_of(
    st.builds(lambda h, p: f"{h}:{p}" if p else h, hostname,
              st.one_of(st.none(), st.integers(1, 65535))),
    st.builds(lambda p: f"localhost:{p}", st.integers(1, 65535)),
    st.just("localhost"),
)
tag = st.builds(lambda first, rest: first + rest,
                st.sampled_from(string.ascii_letters + string.digits + "_"),
                st.text(string.ascii_letters + string.digits + "_.-", max_size=20))
digest = st.builds(lambda hexes: "sha256:" + hexes,
                   st.text("0123456789abcdef", min_size=64, max_size=64))


@st.composite
def image_names(draw: st.DrawFn) -> ImageName:
    path = draw(st.lists(component, min_size=1, max_size=4))
    namespace = path[0] if len(path) > 1 else None
    return ImageName(registry=draw(st.one_of(st.none(), registry)), namespace=namespace,
                     repo="/".join(path[1:]) if len(path) > 1 else path[0],
                     tag=draw(st.one_of(st.none(), tag)),
                     digest=draw(st.one_of(st.none(), digest)))


@SETTINGS
@given(image_names())
def test_image_name_prints_and_parses_back(name: ImageName) -> None:
    # "a.b/repo" reads as registry a.b (as docker reads it): such names are not the
    # parts they were made of
    assume(name.registry is not None or name.namespace is None or
           ("." not in name.namespace and name.namespace != "localhost"))
    text = name.to_str()
    parsed = ImageName.parse(text)
    assert parsed == name
    assert parsed.to_str() == text
    assert hash(parsed) == hash(name)
    assert ImageName.parse(parsed.to_str()).to_str() == text
    # the engine's name: latest only where neither tag nor digest
    engine = parsed.with_default_tag()
    if name.tag is None and name.digest is None:
        assert engine.tag == "latest"
        assert str(engine) == parsed.to_str(explicit_tag=True)
    else:
        assert engine == parsed
    assert parsed.tag == name.tag  # never invented in the value


@SETTINGS
@given(st.text(max_size=80))
def test_any_text_parses_or_is_invalid_image_name(text: str) -> None:
    try:
        name = ImageName.parse(text)
    except InvalidImageName as exc:
        assert str(exc).startswith("invalid image name")
        return
    assert ImageName.parse(name.to_str()) == name


@SETTINGS
@given(st.text(alphabet=string.ascii_lowercase + string.digits + ":/.@-_", max_size=60))
def test_name_like_text_parses_or_is_invalid_image_name(text: str) -> None:
    try:
        name = ImageName.parse(text)
    except InvalidImageName:
        return
    assert name.to_str() == text.strip()


# -- build json ---------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
_KEYS = ["source", "image", "parent_registry", "target_registries", "dont_pull_base_image",
         "prebuild_plugins", "postbuild_plugins", "exit_plugins", "plugin_files", "retry",
         "buildargs", "use_cache", "client_version", "openshift_build_selflink", "bogus"]
plugin_entry = st.one_of(
    json_values,
    st.fixed_dictionaries({"name": st.sampled_from(["pull_base_image", "tag_and_push",
                                                    "squash", "add_labels_in_dockerfile",
                                                    "nope", ""])},
                          optional={"args": json_values, "required": json_values,
                                    "is_allowed_to_fail": json_values}),
)
build_json = st.dictionaries(
    st.sampled_from(_KEYS),
    st.one_of(json_values, st.lists(plugin_entry, max_size=3),
              st.just({"provider": "path", "uri": "file:///nonexistent"}),
              st.just("app:1")),
    max_size=8)


@SETTINGS
@given(build_json)
def test_any_build_json_is_a_request_or_a_project_error(data: dict[str, Any]) -> None:
    try:
        request = BuildRequest.from_mapping(data)
    except AtomicReactorError:
        return
    kwargs = request.workflow_kwargs()
    assert kwargs["image"] == request.image
    library = PluginLibrary()
    for phase in PHASES:
        with contextlib.suppress(AtomicReactorError):
            library.resolve(parse_requests(kwargs.get(f"{phase}_plugins"), phase), phase)


@SETTINGS
@given(st.text(max_size=200))
def test_any_build_json_text_parses_or_is_a_project_error(text: str) -> None:
    try:
        data = parse_build_json(text)
    except AtomicReactorError:
        return
    assert isinstance(data, dict)


@SETTINGS
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=4),
       st.lists(st.text(max_size=30), max_size=4))
def test_any_substitution_applies_or_is_a_project_error(data: dict[str, Any],
                                                        substitutions: list[str]) -> None:
    try:
        result = apply_substitutions(json.loads(json.dumps(data)), substitutions)
    except AtomicReactorError:
        return
    assert isinstance(result, dict)


# -- plugin arguments -------------------------------------------------------------------------

_LIBRARY = PluginLibrary()
_PLUGINS = {name: _LIBRARY.find(name) for name in _LIBRARY.names()}


@pytest.mark.parametrize("key", sorted(_PLUGINS))
def test_any_plugin_arguments_validate_or_are_a_plugin_config_error(key: str) -> None:
    plugin = _PLUGINS[key]
    assert plugin is not None

    @PLUGIN_SETTINGS
    @given(st.dictionaries(st.text(max_size=12), json_values, max_size=4),
           st.dictionaries(st.sampled_from(_argument_names(plugin) or ["x"]), json_values,
                           max_size=4))
    def check(random_args: dict[str, Any], known_args: dict[str, Any]) -> None:
        for args in (random_args, known_args):
            try:
                validate_plugin_args(key, plugin, args)
            except AtomicReactorError:
                continue

    check()


def _argument_names(plugin: type) -> list[str]:
    from atomic_reactor._plugin_args import plugin_schema

    return sorted(plugin_schema(plugin).get("properties", {}))


def test_property_tests_see_every_builtin_plugin() -> None:
    assert {"pull_base_image", "tag_and_push", "stop_autorebuild_if_disabled"} <= set(_PLUGINS)
    assert Path(__file__).name == "test_properties.py"
