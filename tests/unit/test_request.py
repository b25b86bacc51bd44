"""Unit tests of build requests (_request): validation, defaults, substitutions."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._request import (
    BuildRequest,
    apply_substitutions,
    load_build_json,
    parse_build_json,
    parse_epoch,
    parse_retry,
    parse_value,
)
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import BuildJsonError, InputError, InvalidImageName, SourceError
from atomic_reactor.source import SourceSpec
from atomic_reactor.util import ImageName

SOURCE = {"provider": "path", "uri": "file:///src", "dockerfile_path": "./"}


def request_data(**extra: Any) -> dict[str, Any]:
    return {"source": dict(SOURCE), "image": "app:1", **extra}


# -- from_mapping ----------------------------------------------------------------------------


def test_minimal_request() -> None:
    request = BuildRequest.from_mapping(request_data())
    assert request.source == SOURCE
    assert request.image == "app:1"
    assert request.parent_registry is None
    assert request.target_registries == ()
    assert request.parent_registry_insecure is False
    assert request.target_registries_insecure is False
    assert request.dont_pull_base_image is False
    assert request.plugins == {}
    assert request.plugin_files == ()
    assert request.options == {}
    assert request.build_image is None
    assert request.push_buildroot_to is None


def test_full_request() -> None:
    data = request_data(
        parent_registry="127.0.0.1:5000", target_registries=["r1:5000", "r2:5000"],
        parent_registry_insecure=True, target_registries_insecure=True,
        dont_pull_base_image=True, plugin_files=["/p.py"],
        prebuild_plugins=[{"name": "a"}], exit_plugins=[],
        retry={"attempts": 2}, buildargs={"A": "1"}, use_cache=False, log_file="/l",
        build_image="buildroot:1", push_buildroot_to="r:5000/buildroot",
    )
    request = BuildRequest.from_mapping(data)
    assert request.parent_registry == "127.0.0.1:5000"
    assert request.target_registries == ("r1:5000", "r2:5000")
    assert request.parent_registry_insecure is True
    assert request.target_registries_insecure is True
    assert request.dont_pull_base_image is True
    assert request.plugin_files == ("/p.py",)
    assert request.plugins == {"prebuild_plugins": ({"name": "a"},), "exit_plugins": ()}
    assert request.options == {"retry": {"attempts": 2}, "buildargs": {"A": "1"},
                               "use_cache": False, "log_file": "/l"}
    assert request.build_image == "buildroot:1"
    assert request.push_buildroot_to == "r:5000/buildroot"


def test_request_does_not_alias_the_input() -> None:
    data = request_data()
    request = BuildRequest.from_mapping(data)
    data["source"]["uri"] = "file:///elsewhere"
    assert request.source["uri"] == "file:///src"


def test_image_name_object_is_accepted() -> None:
    request = BuildRequest.from_mapping(request_data(image=ImageName.parse("app:2")))
    assert request.image == "app:2"


def test_to_dict_round_trip() -> None:
    data = request_data(parent_registry="p:5000", target_registries=["t:5000"],
                        prebuild_plugins=[{"name": "a", "args": {"x": 1}}],
                        retry={"attempts": 2})
    request = BuildRequest.from_mapping(data)
    assert BuildRequest.from_mapping(request.to_dict()) == request


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "build json must be a JSON object"),
        ("{}", "build json must be a JSON object"),
        (request_data(bogus=1), "unknown key 'bogus'"),
        ({"image": "app"}, "'source' is missing"),
        ({"source": {}, "image": "app"}, "'source' is missing"),
        ({"source": dict(SOURCE)}, "'image' is missing"),
        ({"source": dict(SOURCE), "image": ""}, "'image' is missing"),
        ({"source": "file:///src", "image": "app"}, "'source' must be an object, not str"),
        (request_data(image=5), "'image' must be a string, not int"),
        (request_data(parent_registry=5000), "'parent_registry' must be a string"),
        (request_data(parent_registry_insecure="yes"),
         "'parent_registry_insecure' must be true or false"),
        (request_data(target_registries_insecure=1),
         "'target_registries_insecure' must be true or false"),
        (request_data(dont_pull_base_image="true"),
         "'dont_pull_base_image' must be true or false"),
        (request_data(use_cache="no"), "'use_cache' must be true or false"),
        (request_data(target_registries="r:5000"), "'target_registries' must be a list"),
        (request_data(target_registries={"r:5000": {}}), "'target_registries' must be a list"),
        (request_data(target_registries=["r:5000", ""]), "'target_registries' must be a list"),
        (request_data(target_registries=[5000]), "'target_registries' must be a list"),
        (request_data(prebuild_plugins={"name": "a"}),
         "'prebuild_plugins' must be a list of plugin requests"),
        (request_data(exit_plugins="store_metadata"),
         "'exit_plugins' must be a list of plugin requests"),
        (request_data(postbuild_plugins=5),
         "'postbuild_plugins' must be a list of plugin requests"),
        (request_data(plugin_files="/p.py"), "'plugin_files' must be a list of paths"),
        (request_data(plugin_files=["/p.py", 5]), "'plugin_files' must be a list of paths"),
    ],
)
def test_from_mapping_errors(data: Any, message: str) -> None:
    with pytest.raises(BuildJsonError) as info:
        BuildRequest.from_mapping(data)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_invalid_image_is_an_input_error() -> None:
    with pytest.raises(InvalidImageName) as info:
        BuildRequest.from_mapping(request_data(image="App:1"))
    assert "component 'App'" in str(info.value)
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize("files", [5, True])
def test_non_iterable_plugin_files(files: Any) -> None:
    with pytest.raises(BuildJsonError, match="plugin_files"):
        BuildRequest.from_mapping(request_data(plugin_files=files))


@pytest.mark.parametrize(("key", "value"),
                         [("buildargs", "A=1"), ("buildargs", ["A=1"]), ("log_file", 5),
                          ("retry", 3)])
def test_option_types_are_checked(key: str, value: Any) -> None:
    with pytest.raises(BuildJsonError, match=key):
        BuildRequest.from_mapping(request_data(**{key: value}))


# -- plugin_lists defaults -------------------------------------------------------------------


def test_plugin_lists_default_pulls_base_image_first() -> None:
    request = BuildRequest.from_mapping(
        request_data(prebuild_plugins=[{"name": "add_labels_in_dockerfile"}]))
    lists = request.plugin_lists()
    assert set(lists) == {"prebuild_plugins", "prepublish_plugins", "postbuild_plugins",
                          "exit_plugins"}
    assert lists["prebuild_plugins"] == [
        {"name": "pull_base_image", "args": {}},
        {"name": "add_labels_in_dockerfile"},
    ]
    assert lists["postbuild_plugins"] == []  # no target registries: no tag_and_push
    assert lists["prepublish_plugins"] == []
    assert lists["exit_plugins"] == []


def test_plugin_lists_pass_parent_registry() -> None:
    request = BuildRequest.from_mapping(
        request_data(parent_registry="127.0.0.1:5000", parent_registry_insecure=True))
    assert request.plugin_lists()["prebuild_plugins"] == [
        {"name": "pull_base_image",
         "args": {"parent_registry": "127.0.0.1:5000", "parent_registry_insecure": True}}]


def test_plugin_lists_dont_pull_base_image() -> None:
    request = BuildRequest.from_mapping(
        request_data(dont_pull_base_image=True, parent_registry="p:5000",
                     prebuild_plugins=[{"name": "a"}]))
    assert request.plugin_lists()["prebuild_plugins"] == [{"name": "a"}]


def test_plugin_lists_listed_pull_base_image_wins() -> None:
    listed = {"name": "pull_base_image", "args": {"parent_registry": "mine:5000"}}
    request = BuildRequest.from_mapping(
        request_data(parent_registry="other:5000",
                     prebuild_plugins=[{"name": "a"}, listed]))
    prebuild = request.plugin_lists()["prebuild_plugins"]
    assert prebuild == [{"name": "a"}, listed]


def test_plugin_lists_tag_and_push_appended_for_target_registries() -> None:
    request = BuildRequest.from_mapping(
        request_data(target_registries=["r1:5000", "r2:5000"], target_registries_insecure=True,
                     postbuild_plugins=[{"name": "tag_by_labels"}]))
    assert request.plugin_lists()["postbuild_plugins"] == [
        {"name": "tag_by_labels"},
        {"name": "tag_and_push",
         "args": {"registries": {"r1:5000": {"insecure": True},
                                 "r2:5000": {"insecure": True}}}},
    ]


def test_plugin_lists_listed_tag_and_push_wins() -> None:
    listed = {"name": "tag_and_push", "args": {"registries": {"mine:5000": {}}}}
    request = BuildRequest.from_mapping(
        request_data(target_registries=["r1:5000"], postbuild_plugins=[listed]))
    assert request.plugin_lists()["postbuild_plugins"] == [listed]


def test_plugin_lists_are_copies() -> None:
    request = BuildRequest.from_mapping(request_data(prebuild_plugins=[{"name": "a"}]))
    lists = request.plugin_lists()
    lists["prebuild_plugins"][1]["args"] = {"changed": True}
    lists["prebuild_plugins"].clear()
    assert request.plugin_lists()["prebuild_plugins"][1] == {"name": "a"}


def test_workflow_kwargs() -> None:
    request = BuildRequest.from_mapping(
        request_data(target_registries=["r:5000"], plugin_files=["/p.py"],
                     buildargs={"A": "1"}, use_cache=False, retry={"attempts": 2}))
    kwargs = request.workflow_kwargs()
    # the typed, validated parts: the workflow does not check them again
    assert kwargs["source"] == SourceSpec.from_dict(SOURCE) == request.source_spec
    assert kwargs["retry"] == RetryPolicy(attempts=2) == request.retry_policy
    assert kwargs["image"] == "app:1"
    assert kwargs["plugin_files"] == ["/p.py"]
    assert kwargs["buildargs"] == {"A": "1"}
    assert kwargs["use_cache"] is False
    assert kwargs["prebuild_plugins"][0]["name"] == "pull_base_image"
    assert kwargs["postbuild_plugins"][-1]["name"] == "tag_and_push"
    for key in ("parent_registry", "target_registries", "dont_pull_base_image"):
        assert key not in kwargs


# -- parse_value -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("1", 1),
        ("-3", -3),
        (" 42 ", 42),
        ('{"a": [1, "b"]}', {"a": [1, "b"]}),
        ("[1, 2]", [1, 2]),
        ("1.0", "1.0"),
        ("1e3", "1e3"),
        ("0x10", "0x10"),
        ("True", "True"),
        ("yes", "yes"),
        ("", ""),
        ("-", "-"),
        ("plain string", "plain string"),
        ("{not json", "{not json"),
        ("[unclosed", "[unclosed"),
        ("v1.2.3", "v1.2.3"),
        ("a=b", "a=b"),
    ],
)
def test_parse_value(text: str, value: Any) -> None:
    parsed = parse_value(text)
    assert parsed == value
    assert type(parsed) is type(value)


# -- apply_substitutions -----------------------------------------------------------------------


def test_substitute_top_level_and_nested_keys() -> None:
    data = request_data()
    result = apply_substitutions(data, [
        "image=other:2",
        "source.provider_params.git_commit=abc123",
        "source.uri=file:///x",
        "dont_pull_base_image=true",
        "retry.attempts=3",
    ])
    assert result is data
    assert data["image"] == "other:2"
    assert data["source"]["provider_params"] == {"git_commit": "abc123"}
    assert data["source"]["uri"] == "file:///x"
    assert data["dont_pull_base_image"] is True
    assert data["retry"] == {"attempts": 3}


def test_substitute_value_may_contain_equals_sign() -> None:
    data = apply_substitutions({}, ["buildargs.OPTS=a=b=c"])
    assert data == {"buildargs": {"OPTS": "a=b=c"}}


def test_substitute_version_string_stays_string() -> None:
    data = apply_substitutions({}, ["buildargs.VERSION=1.0"])
    assert data["buildargs"]["VERSION"] == "1.0"


def test_substitute_plugin_argument() -> None:
    data = request_data(prebuild_plugins=[
        {"name": "pull_base_image"},
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"a": "b"}}},
    ])
    apply_substitutions(data, [
        "prebuild_plugins.pull_base_image.parent_registry=127.0.0.1:5000",
        "prebuild_plugins.pull_base_image.parent_registry_insecure=true",
        'prebuild_plugins.add_labels_in_dockerfile.labels={"x": "1"}',
        "prebuild_plugins.add_labels_in_dockerfile.nested.deep=1",
    ])
    assert data["prebuild_plugins"][0] == {
        "name": "pull_base_image",
        "args": {"parent_registry": "127.0.0.1:5000", "parent_registry_insecure": True}}
    assert data["prebuild_plugins"][1]["args"] == {"labels": {"x": "1"},
                                                   "nested": {"deep": 1}}


def test_substitute_plugin_argument_in_every_list() -> None:
    for phase in ("prebuild_plugins", "prepublish_plugins", "postbuild_plugins",
                  "exit_plugins"):
        data: dict[str, Any] = {phase: [{"name": "p", "args": {}}]}
        apply_substitutions(data, [f"{phase}.p.flag=false"])
        assert data[phase][0]["args"] == {"flag": False}


def test_substitute_whole_plugin_list() -> None:
    data = apply_substitutions(request_data(), ['exit_plugins=[{"name": "x"}]'])
    assert data["exit_plugins"] == [{"name": "x"}]


def test_substitutions_applied_in_order() -> None:
    data = apply_substitutions({}, ["a=1", "a=2"])
    assert data == {"a": 2}


@pytest.mark.parametrize(
    ("data", "substitution", "message"),
    [
        ({}, "novalue", "'novalue' is not of the form KEY=VALUE"),
        ({}, "=value", "is not of the form KEY=VALUE"),
        ({"prebuild_plugins": []}, "prebuild_plugins.missing.arg=1",
         "no plugin 'missing' in prebuild_plugins"),
        ({}, "postbuild_plugins.missing.arg=1", "no plugin 'missing' in postbuild_plugins"),
        ({"prebuild_plugins": {"name": "x"}}, "prebuild_plugins.x.arg=1",
         "'prebuild_plugins' is not a list"),
        ({"prebuild_plugins": [{"name": "x"}]}, "prebuild_plugins.x=1",
         "name the argument (prebuild_plugins.x.ARG=VALUE)"),
        ({"source": "file:///x"}, "source.uri=1", "'source' is not an object"),
        ({"source": {"provider_params": 5}}, "source.provider_params.git_commit=1",
         "'provider_params' is not an object"),
        ({"prebuild_plugins": [{"name": "x", "args": {"a": "s"}}]},
         "prebuild_plugins.x.a.b=1", "'a' is not an object"),
    ],
)
def test_substitution_errors(data: dict[str, Any], substitution: str, message: str) -> None:
    with pytest.raises(BuildJsonError) as info:
        apply_substitutions(copy.deepcopy(data), [substitution])
    assert message in str(info.value)


def test_substitute_into_plugin_with_null_args() -> None:
    data: dict[str, Any] = {"prebuild_plugins": [{"name": "x", "args": None}]}
    apply_substitutions(data, ["prebuild_plugins.x.a=1"])
    assert data["prebuild_plugins"][0]["args"] == {"a": 1}


# -- build json files ------------------------------------------------------------------------


def test_load_build_json(tmp_path: Path) -> None:
    path = tmp_path / "build.json"
    path.write_text('{"image": "a"}', encoding="utf-8")
    assert load_build_json(path) == {"image": "a"}
    assert load_build_json(str(path)) == {"image": "a"}


def test_load_build_json_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(BuildJsonError, match=f"build json {path} does not exist"):
        load_build_json(path)


def test_load_build_json_directory(tmp_path: Path) -> None:
    with pytest.raises(BuildJsonError, match="cannot read build json"):
        load_build_json(tmp_path)


def test_load_build_json_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"image": "caf\xe9"}')
    with pytest.raises(BuildJsonError, match="cannot read build json"):
        load_build_json(path)


def test_malformed_json_reports_the_line() -> None:
    with pytest.raises(BuildJsonError) as info:
        parse_build_json('{\n  "image": "a",\n  "source": \n}\n', "b.json")
    message = str(info.value)
    assert message.startswith("b.json is not valid JSON")
    assert "line 4" in message


@pytest.mark.parametrize("text", ["[]", '"string"', "5", "null"])
def test_build_json_must_be_an_object(text: str) -> None:
    with pytest.raises(BuildJsonError, match="must hold a JSON object"):
        parse_build_json(text)


# -- push settings -----------------------------------------------------------------------------


def test_push_settings_reach_tag_and_push_and_round_trip() -> None:
    request = BuildRequest.from_mapping(request_data(
        target_registries=["r:5000"], push_method="registry", compression="zstd",
        compression_level=9))
    post = request.plugin_lists()["postbuild_plugins"]
    assert post[-1] == {"name": "tag_and_push", "args": {
        "registries": {"r:5000": {"insecure": False}}, "push_method": "registry",
        "compression": "zstd", "compression_level": 9}}
    assert BuildRequest.from_mapping(request.to_dict()) == request


def test_push_settings_fill_a_listed_tag_and_push() -> None:
    request = BuildRequest.from_mapping(request_data(
        push_method="engine", compression="none",
        postbuild_plugins=[{"name": "tag_and_push",
                            "args": {"registries": {}, "compression": "gzip"}}]))
    args = request.plugin_lists()["postbuild_plugins"][0]["args"]
    assert args == {"registries": {}, "push_method": "engine", "compression": "gzip"}


@pytest.mark.parametrize(("extra", "message"), [
    ({"push_method": "ftp"}, "'push_method' must be one of registry, engine"),
    ({"compression": "brotli"}, "'compression' must be one of gzip, zstd, none"),
    ({"compression_level": 12}, "gzip compression levels are 1 to 9, not 12"),
    ({"compression": "none", "compression_level": 3}, "needs a compression"),
    ({"compression_level": "3"}, "whole number"),
    ({"compression": "zstd", "manifest_format": "docker"}, "zstd layers need an OCI manifest"),
    ({"manifest_format": "v1"}, "'manifest_format' must be one of docker, oci"),
])
def test_push_settings_are_checked(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(BuildJsonError, match=message):
        BuildRequest.from_mapping(request_data(**extra))
def test_request_validates_source_and_retry_once() -> None:
    with pytest.raises(SourceError, match="unknown source provider"):
        BuildRequest.from_mapping(request_data(source={"provider": "svn", "uri": "x"}))
    with pytest.raises(InputError, match="invalid retry settings"):
        BuildRequest.from_mapping(request_data(retry={"attempts": "x", "nosuch": 1}))
    assert parse_retry(None) is None and parse_epoch(None) is None
    assert parse_epoch(0) == 0
    for bad in (-1, True, 1.5, "1"):
        with pytest.raises(InputError, match="source_date_epoch"):
            parse_epoch(bad)


# -- build secrets ----------------------------------------------------------------------------


def test_a_secret_file_is_read_once_and_handed_on_typed(tmp_path: Path) -> None:
    import json
    import secrets

    from atomic_reactor._engine.buildah.engine import BuildahEngine
    from atomic_reactor._engine.types import BuildSecret
    from atomic_reactor._secrets import redact

    value = f"token-{secrets.token_hex(8)}"
    path = tmp_path / "token"
    path.write_text(value + "\n")
    request = BuildRequest.from_mapping(request_data(secrets=[f"id=tok,src={path}"]))
    [secret] = request.options["secrets"]
    assert secret == BuildSecret("tok", src=str(path)) and secret.registered
    assert redact(f"x {value} y") == "x *** y"  # registered by the validation
    assert value not in repr(request)
    # handed on typed to the workflow; as a build json names it in to_dict
    assert request.workflow_kwargs()["secrets"] == (secret,)
    assert request.to_dict()["secrets"] == [{"id": "tok", "src": str(path)}]
    assert value not in json.dumps(request.to_dict())
    assert BuildRequest.from_mapping(request.to_dict()) == request
    # the engine does not read it again: gone now, its --secret value is still made
    path.unlink()
    assert BuildahEngine._secret_arg(secret) == f"id=tok,src={path}"
    # a secret nobody read yet is read (and must be readable) there
    with pytest.raises(InputError, match=r"build secret 'tok': cannot read"):
        BuildahEngine._secret_arg(BuildSecret("tok", src=str(path)))


def test_a_secret_variable_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from atomic_reactor._engine.buildah.engine import BuildahEngine
    from atomic_reactor._engine.types import BuildSecret

    monkeypatch.setenv("ART_TEST_SECRET_VAR", "v-" + "x" * 12)
    request = BuildRequest.from_mapping(request_data(
        secrets=[{"id": "v", "env": "ART_TEST_SECRET_VAR"}]))
    [secret] = request.options["secrets"]
    assert secret == BuildSecret("v", env="ART_TEST_SECRET_VAR") and secret.registered
    monkeypatch.delenv("ART_TEST_SECRET_VAR")
    assert BuildahEngine._secret_arg(secret) == "id=v,env=ART_TEST_SECRET_VAR"
    with pytest.raises(InputError, match="ART_TEST_SECRET_VAR is not set"):
        BuildahEngine._secret_arg(BuildSecret("v", env="ART_TEST_SECRET_VAR"))
