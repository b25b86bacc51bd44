"""Unit tests of plugin discovery (plugin.PluginLibrary) and plugin requests."""

from __future__ import annotations

import logging
import sys
import textwrap
import uuid
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor import _entrypoints
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.plugin import (
    ENTRY_POINT_GROUP,
    ExitPlugin,
    PluginLibrary,
    PluginRequest,
    PostBuildPlugin,
    PreBuildPlugin,
    PrePublishPlugin,
    parse_requests,
)
from atomic_reactor.plugins.pull_base_image import PullBaseImagePlugin
from atomic_reactor.plugins.tag_and_push import TagAndPushPlugin

PLUGIN_SOURCE = textwrap.dedent(
    """
    from typing import Any

    from atomic_reactor.plugin import PostBuildPlugin, PreBuildPlugin


    class Helper:
        pass


    class NoKey(PreBuildPlugin):
        pass


    class FilePlugin(PreBuildPlugin):
        key = "{key}"

        def __init__(self, tasker: Any, workflow: Any, greeting: str = "hi") -> None:
            super().__init__(tasker, workflow)
            self.greeting = greeting

        def run(self) -> str:
            return self.greeting


    class FilePostPlugin(PostBuildPlugin):
        key = "{key}_post"

        def run(self) -> None:
            return None
    """
)


def write_plugin_file(directory: Path, key: str, name: str = "my_plugins.py") -> Path:
    path = directory / name
    path.write_text(PLUGIN_SOURCE.replace("{key}", key), encoding="utf-8")
    return path


@pytest.fixture
def fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module (unique name) with a plugin, a non-plugin and a broken twin."""
    name = f"ar_test_plugins_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(
        """
        from atomic_reactor.plugin import ExitPlugin


        class LazyPlugin(ExitPlugin):
            key = "lazy_test_plugin"

            def run(self) -> str:
                return "ran"


        class NotAPlugin:
            pass
        """), encoding="utf-8")
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('cannot import me')\n",
                                                encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in (name, f"{name}_broken"):
        sys.modules.pop(module, None)


def patch_entry_points(monkeypatch: pytest.MonkeyPatch, extra: list[EntryPoint]) -> None:
    """Third-party entry points ``extra`` installed besides the real ones."""
    real = dict(_entrypoints.installed_entry_points(ENTRY_POINT_GROUP))

    def fake(group: str) -> dict[str, _entrypoints.EntryPointLike]:
        assert group == ENTRY_POINT_GROUP
        return {**real, **{ep.name: ep for ep in extra}}

    monkeypatch.setattr(_entrypoints, "installed_entry_points", fake)


# -- built-in entry points -----------------------------------------------------------------


def test_builtin_plugins_found_by_key() -> None:
    library = PluginLibrary()
    assert "pull_base_image" in library.names()
    assert "tag_and_push" in library.names()
    assert library.names() == sorted(library.names())
    pull = library.find("pull_base_image")
    push = library.find("tag_and_push")
    assert pull is PullBaseImagePlugin
    assert push is TagAndPushPlugin
    assert pull.key == "pull_base_image"
    assert pull.phase == "prebuild"
    assert push.phase == "postbuild"
    assert library.get("pull_base_image", "prebuild") is PullBaseImagePlugin
    assert library.get("tag_and_push", "postbuild") is TagAndPushPlugin


def test_entry_points_are_loaded_lazily(monkeypatch: pytest.MonkeyPatch,
                                        fake_module: str) -> None:
    patch_entry_points(monkeypatch, [
        EntryPoint(name="lazy_test_plugin", value=f"{fake_module}:LazyPlugin",
                   group=ENTRY_POINT_GROUP)])
    library = PluginLibrary()
    assert "lazy_test_plugin" in library.names()
    assert fake_module not in sys.modules  # listing does not import
    found = library.find("lazy_test_plugin")
    assert fake_module in sys.modules
    assert found is not None
    assert found.key == "lazy_test_plugin"
    assert issubclass(found, ExitPlugin)
    assert library.find("lazy_test_plugin") is found  # cached
    assert library.get("lazy_test_plugin", "exit") is found


def test_entry_point_that_fails_to_import(monkeypatch: pytest.MonkeyPatch,
                                          fake_module: str) -> None:
    patch_entry_points(monkeypatch, [
        EntryPoint(name="broken_ep", value=f"{fake_module}_broken:Plugin",
                   group=ENTRY_POINT_GROUP)])
    library = PluginLibrary()  # listing still works
    assert "broken_ep" in library.names()
    with pytest.raises(PluginConfigError) as info:
        library.find("broken_ep")
    assert info.value.plugin == "broken_ep"
    assert "broken_ep" in str(info.value)
    assert "RuntimeError: cannot import me" in str(info.value)


def test_entry_point_that_is_not_a_plugin(monkeypatch: pytest.MonkeyPatch,
                                          fake_module: str) -> None:
    patch_entry_points(monkeypatch, [
        EntryPoint(name="not_plugin", value=f"{fake_module}:NotAPlugin",
                   group=ENTRY_POINT_GROUP)])
    with pytest.raises(PluginConfigError, match="not a plugin class") as info:
        PluginLibrary().get("not_plugin", "exit")
    assert info.value.plugin == "not_plugin"


def test_unknown_plugin() -> None:
    library = PluginLibrary()
    assert library.find("no_such_plugin") is None
    with pytest.raises(PluginConfigError) as info:
        library.get("no_such_plugin", "prebuild")
    assert info.value.plugin == "no_such_plugin"
    assert "unknown plugin 'no_such_plugin' in prebuild_plugins" in str(info.value)
    assert info.value.exit_code == 2


def test_wrong_phase() -> None:
    library = PluginLibrary()
    with pytest.raises(PluginConfigError) as info:
        library.get("tag_and_push", "prebuild")
    assert info.value.plugin == "tag_and_push"
    message = str(info.value)
    assert "tag_and_push is a postbuild plugin" in message
    assert "prebuild_plugins" in message
    with pytest.raises(PluginConfigError, match="prebuild plugin"):
        library.resolve([PluginRequest("pull_base_image")], "exit")


def test_phase_classes() -> None:
    assert PreBuildPlugin.phase == "prebuild"
    assert PrePublishPlugin.phase == "prepublish"
    assert PostBuildPlugin.phase == "postbuild"
    assert ExitPlugin.phase == "exit"
    assert ExitPlugin.is_allowed_to_fail is True
    assert PreBuildPlugin.is_allowed_to_fail is False


# -- plugin files ----------------------------------------------------------------------------


def test_plugin_file_is_loaded(tmp_path: Path) -> None:
    path = write_plugin_file(tmp_path, "from_file")
    library = PluginLibrary([str(path)])
    assert "from_file" in library.names()
    assert "from_file_post" in library.names()
    found = library.get("from_file", "prebuild")
    assert found.__name__ == "FilePlugin"
    assert issubclass(found, PreBuildPlugin)
    assert library.get("from_file_post", "postbuild").__name__ == "FilePostPlugin"
    # classes without a key and non-plugins are not plugins
    assert "NoKey" not in library.names()
    plugin = found(None, None, greeting="hello")  # type: ignore[arg-type]
    assert plugin.run() == "hello"
    # built-ins stay available next to file plugins
    assert library.find("pull_base_image") is PullBaseImagePlugin


def test_plugin_file_args_are_validated(tmp_path: Path) -> None:
    library = PluginLibrary([str(write_plugin_file(tmp_path, "from_file"))])
    library.resolve([PluginRequest("from_file", {"greeting": "yo"})], "prebuild")
    with pytest.raises(PluginConfigError) as info:
        library.resolve([PluginRequest("from_file", {"greting": "yo"})], "prebuild")
    assert info.value.plugin == "from_file"
    assert info.value.argument == "greting"


def test_plugin_file_overrides_entry_point(tmp_path: Path) -> None:
    library = PluginLibrary([str(write_plugin_file(tmp_path, "pull_base_image"))])
    found = library.get("pull_base_image", "prebuild")
    assert found is not PullBaseImagePlugin
    assert found.__name__ == "FilePlugin"


def test_plugin_file_loaded_twice_gives_same_class(tmp_path: Path) -> None:
    path = str(write_plugin_file(tmp_path, "twice"))
    first = PluginLibrary([path]).find("twice")
    second = PluginLibrary([path]).find("twice")
    assert first is not None
    assert first is second


def test_plugin_file_that_fails_to_import(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import no_such_module_for_atomic_reactor_tests\n", encoding="utf-8")
    with pytest.raises(PluginConfigError) as info:
        PluginLibrary([str(path)])
    message = str(info.value)
    assert str(path) in message
    assert "failed to load" in message
    assert "ModuleNotFoundError" in message
    assert not any("broken" in name and name.startswith("atomic_reactor_plugin_file_")
                   for name in sys.modules)


def test_plugin_file_with_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "syntax.py"
    path.write_text("def (:\n", encoding="utf-8")
    with pytest.raises(PluginConfigError, match="SyntaxError"):
        PluginLibrary([str(path)])


def test_plugin_file_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "missing.py"
    with pytest.raises(PluginConfigError) as info:
        PluginLibrary([str(path)])
    assert f"plugin file {path} does not exist" in str(info.value)


def test_plugin_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="does not exist"):
        PluginLibrary([str(tmp_path)])


def test_plugin_file_without_plugins_warns(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "empty_plugins.py"
    path.write_text("X = 1\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="atomic_reactor.plugin"):
        library = PluginLibrary([str(path)])
    assert "defines no plugin" in caplog.text
    assert library.names() == PluginLibrary().names()


# -- resolving requests -----------------------------------------------------------------------


def test_not_required_unknown_plugin_is_skipped() -> None:
    library = PluginLibrary()
    request = PluginRequest("no_such_plugin", {"x": 1}, required=False)
    resolved = library.resolve([request, PluginRequest("pull_base_image")], "prebuild")
    assert resolved == [(request, None), (PluginRequest("pull_base_image"),
                                          PullBaseImagePlugin)]


def test_required_unknown_plugin_is_an_error() -> None:
    with pytest.raises(PluginConfigError, match="unknown plugin 'no_such_plugin'"):
        PluginLibrary().resolve([PluginRequest("no_such_plugin")], "prebuild")


def test_not_required_known_plugin_is_still_validated() -> None:
    request = PluginRequest("pull_base_image", {"bogus": 1}, required=False)
    with pytest.raises(PluginConfigError) as info:
        PluginLibrary().resolve([request], "prebuild")
    assert info.value.argument == "bogus"


def test_resolve_validates_args() -> None:
    library = PluginLibrary()
    with pytest.raises(PluginConfigError) as info:
        library.resolve([PluginRequest("tag_and_push", {})], "postbuild")
    assert info.value.plugin == "tag_and_push"
    assert info.value.argument == "registries"
    library.resolve([PluginRequest("tag_and_push", {"registries": {"r:5000": {}}})],
                    "postbuild")


# -- PluginRequest ---------------------------------------------------------------------------


def test_plugin_request_from_dict() -> None:
    request = PluginRequest.from_dict(
        {"name": "x", "args": {"a": 1}, "required": False, "is_allowed_to_fail": True},
        "prebuild")
    assert request == PluginRequest("x", {"a": 1}, required=False, is_allowed_to_fail=True)
    assert request.to_dict() == {"name": "x", "args": {"a": 1}, "required": False,
                                 "is_allowed_to_fail": True}
    minimal = PluginRequest.from_dict({"name": "y"})
    assert minimal == PluginRequest("y", {}, required=True, is_allowed_to_fail=None)
    assert minimal.to_dict() == {"name": "y", "args": {}}
    assert PluginRequest.from_dict({"name": "z", "args": None}).args == {}


def test_plugin_request_copies_args() -> None:
    args = {"a": 1}
    request = PluginRequest.from_dict({"name": "x", "args": args})
    args["a"] = 2
    assert request.args == {"a": 1}


@pytest.mark.parametrize(
    ("data", "message", "plugin"),
    [
        ("pull_base_image", "prebuild_plugins: each entry must be an object", None),
        (["pull_base_image"], "each entry must be an object", None),
        ({}, "prebuild_plugins: an entry has no 'name'", None),
        ({"name": ""}, "an entry has no 'name'", None),
        ({"name": 5}, "an entry has no 'name'", None),
        ({"name": "x", "arg": {}}, "entry 'x' has an unknown key 'arg'", "x"),
        ({"name": "x", "args": "a=1"}, "plugin x: 'args' must be an object", "x"),
        ({"name": "x", "args": ["a"]}, "plugin x: 'args' must be an object", "x"),
        ({"name": "x", "required": "no"}, "plugin x: 'required' must be true or false", "x"),
        ({"name": "x", "is_allowed_to_fail": 1},
         "plugin x: 'is_allowed_to_fail' must be true or false", "x"),
    ],
)
def test_plugin_request_validation(data: Any, message: str, plugin: str | None) -> None:
    with pytest.raises(PluginConfigError) as info:
        PluginRequest.from_dict(data, "prebuild")
    assert message in str(info.value)
    assert info.value.plugin == plugin


@pytest.mark.parametrize("args", [[], "", 0, False])
def test_plugin_request_rejects_falsy_non_object_args(args: Any) -> None:
    with pytest.raises(PluginConfigError, match="'args' must be an object"):
        PluginRequest.from_dict({"name": "x", "args": args})


def test_parse_requests() -> None:
    assert parse_requests(None, "exit") == []
    request = PluginRequest("b")
    parsed = parse_requests([{"name": "a"}, request], "exit")
    assert parsed == [PluginRequest("a"), request]
    for bad in ("pull_base_image", {"name": "a"}, 5):
        with pytest.raises(PluginConfigError, match="exit_plugins must be a list"):
            parse_requests(bad, "exit")  # type: ignore[arg-type]
