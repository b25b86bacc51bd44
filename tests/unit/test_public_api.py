"""Pin the public surface (the 1.6 contract): names, signatures, attributes.

Nothing here contacts a container engine: taskers point at a socket that does not exist.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor import api, build, core, inner, plugin, source, util
from atomic_reactor.errors import (
    DockerfileError,
    EngineUnavailable,
    InputError,
    PluginConfigError,
)

NO_ENGINE = "unix:///nonexistent.sock"
E = inspect.Parameter.empty
POK = inspect.Parameter.POSITIONAL_OR_KEYWORD


def params(func: Callable[..., Any]) -> list[tuple[str, Any]]:
    """``(name, default)`` of the positional-or-keyword parameters, ``self`` left out."""
    signature = inspect.signature(func)
    return [(p.name, p.default) for p in signature.parameters.values()
            if p.kind is POK and p.name != "self"]


def has_var_keyword(func: Callable[..., Any]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD
               for p in inspect.signature(func).parameters.values())


def extra_keyword_only_have_defaults(func: Callable[..., Any]) -> bool:
    return all(p.default is not E for p in inspect.signature(func).parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY)


@pytest.fixture
def tasker() -> core.DockerTasker:
    return core.DockerTasker(base_url=NO_ENGINE)


@pytest.fixture
def src_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "src"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM fedora:39\nRUN true\n", encoding="utf-8")
    return directory


@pytest.fixture
def path_source(src_dir: Path) -> dict[str, str]:
    return {"provider": "path", "uri": f"file://{src_dir}"}


# -- atomic_reactor.api ---------------------------------------------------------------------------


def test_build_image_here_signature() -> None:
    assert params(api.build_image_here) == [
        ("source", E), ("image", E), ("parent_registry", None), ("target_registries", None),
        ("parent_registry_insecure", False), ("target_registries_insecure", False),
        ("dont_pull_base_image", False),
    ]
    assert has_var_keyword(api.build_image_here)


@pytest.mark.parametrize("name", ["build_image_in_privileged_container",
                                  "build_image_using_hosts_docker"])
def test_build_in_container_signatures(name: str) -> None:
    func = getattr(api, name)
    assert params(func) == [
        ("build_image", E), ("source", E), ("image", E), ("parent_registry", None),
        ("target_registries", None), ("push_buildroot_to", None),
        ("parent_registry_insecure", False), ("target_registries_insecure", False),
        ("dont_pull_base_image", False),
    ]
    assert has_var_keyword(func)


def test_api_exports() -> None:
    for name in ("build_image_here", "build_image_in_privileged_container",
                 "build_image_using_hosts_docker"):
        assert name in api.__all__
        assert callable(getattr(api, name))


def test_build_image_here_rejects_bad_input_before_building(path_source: dict[str, str]
                                                            ) -> None:
    with pytest.raises(InputError, match="invalid image name"):
        api.build_image_here(path_source, "Bad:Image",
                             tasker=core.DockerTasker(base_url=NO_ENGINE))
    with pytest.raises(InputError, match="unknown key 'bogus'"):
        api.build_image_here(path_source, "app:1", bogus=1,
                             tasker=core.DockerTasker(base_url=NO_ENGINE))


# -- core.DockerTasker ----------------------------------------------------------------------------

TASKER_METHODS: dict[str, list[tuple[str, Any]]] = {
    "build_image_from_git": [("url", E), ("image", E), ("git_path", None), ("git_commit", None),
                             ("copy_dockerfile_to", None), ("stream", False),
                             ("use_cache", False)],
    "build_image_from_path": [("path", E), ("image", E), ("stream", False),
                              ("use_cache", False), ("remove_im", True)],
    "commit_container": [("container_id", E), ("image", None), ("message", None)],
    "get_image_info_by_image_id": [("image_id", E)],
    "get_image_info_by_image_name": [("image", E), ("exact_tag", True)],
    "get_info": [],
    "get_version": [],
    "image_exists": [("image_id", E)],
    "inspect_image": [("image_id", E)],
    "login": [("registry", E), ("docker_secret_path", E)],
    "logs": [("container_id", E), ("stderr", True), ("stream", True)],
    "pull_image": [("image", E), ("insecure", False)],
    "push_image": [("image", E), ("insecure", False)],
    "remove_container": [("container_id", E), ("force", False)],
    "remove_image": [("image_id", E), ("force", False), ("noprune", False)],
    "run": [("image", E), ("command", None), ("create_kwargs", None), ("start_kwargs", None)],
    "tag_and_push_image": [("image", E), ("target_image", E), ("insecure", False),
                           ("force", False), ("dockercfg", None)],
    "tag_image": [("image", E), ("target_image", E), ("force", False)],
    "wait": [("container_id", E)],
}


def test_docker_tasker_init_signature() -> None:
    init = core.DockerTasker.__init__
    assert params(init) == [("base_url", None), ("timeout", 120)]
    assert has_var_keyword(init)
    assert extra_keyword_only_have_defaults(init)


@pytest.mark.parametrize("name", sorted(TASKER_METHODS))
def test_docker_tasker_method_signatures(name: str) -> None:
    method = getattr(core.DockerTasker, name)
    assert callable(method)
    assert params(method) == TASKER_METHODS[name]
    assert extra_keyword_only_have_defaults(method)


def test_docker_tasker_does_not_contact_engine_when_constructed(tasker: core.DockerTasker
                                                                 ) -> None:
    assert tasker.last_logs == []
    # ``d`` is there (the SDK client), created on first use
    assert "d" in dir(tasker)
    # first use fails cleanly: proof that construction did not connect
    with pytest.raises(EngineUnavailable) as info:
        tasker.get_version()
    assert "nonexistent.sock" in str(info.value)


def test_docker_tasker_positional_arguments() -> None:
    tasker = core.DockerTasker(NO_ENGINE, 5)
    assert tasker.last_logs == []


# -- inner.DockerBuildWorkflow --------------------------------------------------------------------

WORKFLOW_ATTRIBUTES = [
    "autorebuild_canceled", "base_image_inspect", "build_result", "build_process_failed",
    "builder", "built_image_inspect", "exit_plugins_conf", "files", "image", "kwargs",
    "plugin_failed", "plugin_files", "plugins_durations", "plugins_errors",
    "plugins_timestamps", "postbuild_plugins_conf", "prebuild_plugins_conf",
    "prepublish_plugins_conf", "pulled_base_images", "source", "tag_conf",
]


def test_workflow_signature() -> None:
    init = inner.DockerBuildWorkflow.__init__
    assert params(init) == [
        ("source", E), ("image", E), ("prebuild_plugins", None), ("prepublish_plugins", None),
        ("postbuild_plugins", None), ("exit_plugins", None), ("plugin_files", None),
    ]
    assert has_var_keyword(init)


def test_workflow_instance_variables(path_source: dict[str, str],
                                     tasker: core.DockerTasker) -> None:
    prebuild = [{"name": "pull_base_image"}]
    workflow = inner.DockerBuildWorkflow(path_source, "app:1", prebuild_plugins=prebuild,
                                         tasker=tasker)
    for name in WORKFLOW_ATTRIBUTES:
        assert hasattr(workflow, name), name
    assert workflow.image == util.ImageName.parse("app:1")
    assert isinstance(workflow.source, source.Source)
    assert workflow.prebuild_plugins_conf == prebuild
    assert workflow.prepublish_plugins_conf == []
    assert workflow.postbuild_plugins_conf == []
    assert workflow.exit_plugins_conf == []
    assert workflow.plugin_files == []
    assert workflow.kwargs == {"tasker": tasker}
    assert workflow.builder is None
    assert workflow.build_result is None
    assert workflow.build_process_failed is False
    assert workflow.plugin_failed is False
    assert workflow.autorebuild_canceled is False
    assert workflow.base_image_inspect is None
    assert workflow.built_image_inspect is None
    assert workflow.plugins_durations == {}
    assert workflow.plugins_errors == {}
    assert workflow.plugins_timestamps == {}
    assert workflow.pulled_base_images == set()
    assert workflow.files == {}
    assert isinstance(workflow.tag_conf, inner.TagConf)
    assert workflow.tasker is tasker
    workflow.validate()  # nothing pulled or built: still no engine needed


def test_workflow_unknown_kwarg_is_input_error(path_source: dict[str, str],
                                               tasker: core.DockerTasker) -> None:
    with pytest.raises(InputError) as info:
        inner.DockerBuildWorkflow(path_source, "app:1", tasker=tasker, frobnicate=True)
    assert "'frobnicate'" in str(info.value)
    assert info.value.exit_code == 2


def test_workflow_unknown_plugin_argument(path_source: dict[str, str],
                                          tasker: core.DockerTasker) -> None:
    workflow = inner.DockerBuildWorkflow(
        path_source, "app:1", tasker=tasker,
        prebuild_plugins=[{"name": "pull_base_image", "args": {"parent_regsitry": "r:5000"}}])
    with pytest.raises(PluginConfigError) as info:
        workflow.validate()
    assert info.value.plugin == "pull_base_image"
    assert info.value.argument == "parent_regsitry"
    assert "pull_base_image" in str(info.value)
    assert "'parent_regsitry'" in str(info.value)


def test_workflow_unknown_plugin_in_validate(path_source: dict[str, str],
                                             tasker: core.DockerTasker) -> None:
    workflow = inner.DockerBuildWorkflow(path_source, "app:1", tasker=tasker,
                                         exit_plugins=[{"name": "no_such_plugin"}])
    with pytest.raises(PluginConfigError, match="unknown plugin 'no_such_plugin'"):
        workflow.validate()


def test_workflow_invalid_image(path_source: dict[str, str],
                                tasker: core.DockerTasker) -> None:
    with pytest.raises(InputError, match="invalid image name"):
        inner.DockerBuildWorkflow(path_source, "NOPE", tasker=tasker)


# -- build.InsideBuilder ---------------------------------------------------------------------------


@pytest.fixture
def builder(path_source: dict[str, str], tasker: core.DockerTasker
            ) -> Iterator[build.InsideBuilder]:
    src = source.get_source_instance_for(path_source)
    try:
        yield build.InsideBuilder(src, "app:1", tasker=tasker)
    finally:
        src.cleanup()


def test_inside_builder_members(builder: build.InsideBuilder,
                                tasker: core.DockerTasker) -> None:
    assert builder.base_image_id is None
    assert builder.built_image_info is None
    assert builder.image == util.ImageName.parse("app:1")
    assert builder.image_id is None
    assert builder.last_logs == []
    assert isinstance(builder.source, source.Source)
    assert builder.tasker is tasker
    assert Path(builder.df_path).name == "Dockerfile"
    assert Path(builder.df_path).parent == Path(builder.df_dir)
    assert Path(builder.df_path).read_text(encoding="utf-8").startswith("FROM fedora:39")
    for method in ("build", "get_base_image_info", "get_built_image_info",
                   "inspect_base_image", "inspect_built_image"):
        assert callable(getattr(builder, method)), method
        assert [p for p in params(getattr(build.InsideBuilder, method))
                if p[1] is E] == [], method
    assert params(build.InsideBuilder.set_base_image) == [("base_image", E)]
    builder.set_base_image("registry.example.com/fedora:40")
    assert builder.base_image == util.ImageName.parse("registry.example.com/fedora:40")


def test_inside_builder_without_built_image(builder: build.InsideBuilder) -> None:
    assert builder.get_built_image_info() is None


# -- plugin classes -------------------------------------------------------------------------------

PHASE_CLASSES = [plugin.PreBuildPlugin, plugin.PrePublishPlugin, plugin.PostBuildPlugin,
                 plugin.ExitPlugin]


@pytest.mark.parametrize("cls", PHASE_CLASSES)
def test_plugin_classes(cls: type[plugin.Plugin]) -> None:
    assert issubclass(cls, plugin.BuildPlugin)
    assert isinstance(cls.is_allowed_to_fail, bool)
    assert callable(cls.run)
    assert "key" in inspect.get_annotations(plugin.Plugin)
    init = inspect.signature(cls.__init__)
    assert list(init.parameters)[:3] == ["self", "tasker", "workflow"]


@pytest.mark.parametrize("cls", PHASE_CLASSES)
def test_plugin_classes_define_key(cls: type[plugin.Plugin]) -> None:
    assert hasattr(cls, "key")


def test_plugin_subclass_runs(tasker: core.DockerTasker) -> None:
    class Hello(plugin.PostBuildPlugin):
        key = "hello"

        def run(self) -> str:
            return f"hello from {self.key}"

    instance = Hello(tasker, None)  # type: ignore[arg-type]
    assert instance.run() == "hello from hello"
    assert str(instance) == "hello"
    with pytest.raises(NotImplementedError):
        plugin.ExitPlugin.run(instance)


# -- util / source --------------------------------------------------------------------------------


def test_util_image_name() -> None:
    assert util.ImageName.parse("a/b:c").to_str() == "a/b:c"
    assert util.__all__ == ["DEFAULT_TAG", "ImageName"]


def test_get_source_instance_for(path_source: dict[str, str]) -> None:
    assert params(source.get_source_instance_for)[0] == ("source", E)
    instance = source.get_source_instance_for(path_source)
    try:
        assert isinstance(instance, source.PathSource)
        assert instance.provider == "path"
        assert instance.uri == path_source["uri"]
    finally:
        instance.cleanup()


def test_built_image_info_is_read_when_first_asked_for(path_source: dict[str, str]) -> None:
    """The build does not wait for the built image's entry (the push that follows does
    not need it); the 1.6 attribute reads it when asked, then keeps it."""
    from tests.support.fake_engine import FakeEngine

    engine = FakeEngine()
    src = source.get_source_instance_for(path_source)
    try:
        builder = build.InsideBuilder(src, "app:1", tasker=core.DockerTasker(engine=engine))
        result = builder.build()
        assert result.image_id is not None
        assert [c for c in engine.calls if c[0] != "build"] == []
        entry = builder.built_image_info
        assert entry is not None and entry["Id"] == result.image_id
        assert entry["RepoTags"] == ["app:1"]
        asked = len(engine.calls)
        assert builder.built_image_info is entry and len(engine.calls) == asked
        builder.built_image_info = None  # still settable, as in 1.6
        assert builder.built_image_info is None
        builder.set_image_id(result.image_id)  # a replaced image is read again
        assert builder.built_image_info == entry
    finally:
        src.cleanup()


@pytest.mark.parametrize(("dockerfile", "known"), [
    ("FROM fedora:39\nRUN true\n", "none of its stages is named"),
    ("FROM fedora:39 AS deps\nFROM deps AS app\n", "its stages are deps, app"),
])
def test_inside_builder_refuses_a_target_that_is_no_stage(
        src_dir: Path, path_source: dict[str, str], tasker: core.DockerTasker,
        dockerfile: str, known: str) -> None:
    (src_dir / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    src = source.get_source_instance_for(path_source)
    try:
        with pytest.raises(DockerfileError) as raised:
            build.InsideBuilder(src, "app:1", tasker=tasker, target="nosuch")
        assert str(raised.value) == ("--target nosuch: the Dockerfile has no stage of that "
                                     f"name ({known})")
    finally:
        src.cleanup()
