"""Code written for atomic-reactor 1.6 runs unchanged (issue 12), without an engine.

Each test is written as 1.6 code was: the library call patterns of 1.6 scripts, the
1.6-style plugin file tests/data/compat16/plugins_1_6.py and a build json as
osbs-client wrote it. The engine-facing parts are in tests/integration/test_compat16.py.
"""

from __future__ import annotations

import json
import logging
import signal
import warnings
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor import set_logging
from atomic_reactor._request import BuildRequest
from atomic_reactor._results import ExportedImage, PushedImage
from atomic_reactor.build import InsideBuilder
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import (
    AutoRebuildCanceled,
    BuildCancelled,
    BuildJsonError,
    InputError,
    PluginConfigError,
    PluginFailed,
)
from atomic_reactor.inner import (
    BuildResults,
    BuildResultsEncoder,
    BuildResultsJSONDecoder,
    DockerBuildWorkflow,
)
from atomic_reactor.plugin import (
    InputPluginsRunner,
    PostBuildPluginsRunner,
    PreBuildPluginsRunner,
)
from atomic_reactor.plugins.tag_from_config import TagsFromConfig
from atomic_reactor.source import get_source_instance_for
from atomic_reactor.util import ImageName
from tests.unit.plugins.dockerfile_fakes import fake_tasker, image, make_workflow

NO_ENGINE = "unix:///nonexistent.sock"
PLUGINS_1_6 = str(Path(__file__).resolve().parents[1] / "data" / "compat16" / "plugins_1_6.py")
DIGEST = "sha256:" + "ab" * 32

#: a build json as osbs-client rendered it for atomic-reactor 1.6 (plugins that exist
#: here; osbs-client's own, like koji or pulp_push, are not part of this project)
OSBS_BUILD_JSON: dict[str, Any] = {
    "client_version": "0.39.1",
    "openshift_build_selflink": "/oapi/v1/namespaces/default/builds/app-1",
    "image": "app:1.0",
    "prebuild_plugins": [
        {"name": "pull_base_image", "args": {"parent_registry": "registry.example.com:5000",
                                             "parent_registry_insecure": True}},
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"vendor": "Example"}}},
        {"name": "change_from_in_dockerfile"},
        {"name": "add_yum_repo_by_url", "args": {"repourls": []}},
        {"name": "inject_yum_repo", "args": {}},
        {"name": "distribution_scope"},
        {"name": "stop_autorebuild_if_disabled"},
    ],
    "prepublish_plugins": [{"name": "squash", "args": {}}],
    "postbuild_plugins": [
        {"name": "tag_by_labels"},
        {"name": "tag_from_config"},
        {"name": "tag_and_push", "args": {"registries": {
            "registry.example.com:5000": {"insecure": True}}}},
    ],
    "exit_plugins": [
        {"name": "store_metadata", "args": {"path": "metadata.json"}},
        {"name": "remove_built_image"},
    ],
}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    directory = tmp_path / "src"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    return directory


@pytest.fixture
def source(src: Path) -> dict[str, Any]:
    return {"provider": "path", "uri": "file://" + str(src)}


@pytest.fixture
def tasker() -> DockerTasker:
    return DockerTasker(base_url=NO_ENGINE)


# -- 1, 2: ImageName ------------------------------------------------------------------------


def test_image_name_as_1_6_scripts_use_it() -> None:
    name = ImageName.parse("fedora")
    assert name.tag is None
    assert name.to_str() == "fedora"
    assert name == ImageName(repo="fedora")
    name.registry = "registry.example.com:5000"
    name.namespace = "base"
    name.tag = "39"
    copied = name.copy()
    copied.tag = "40"
    assert str(name) == "registry.example.com:5000/base/fedora:39"
    assert str(copied) == "registry.example.com:5000/base/fedora:40"
    assert {name: 1}[ImageName.parse("registry.example.com:5000/base/fedora:39")] == 1


# -- 3: build options of 1.6 build jsons -------------------------------------------------


def test_osbs_client_build_json_is_accepted(source: dict[str, Any], tasker: DockerTasker,
                                            caplog: pytest.LogCaptureFixture) -> None:
    data = dict(OSBS_BUILD_JSON, source=source)
    request = BuildRequest.from_mapping(data)
    kwargs = request.workflow_kwargs()
    assert kwargs["client_version"] == "0.39.1"
    with caplog.at_level(logging.WARNING, "atomic_reactor.inner"):
        workflow = DockerBuildWorkflow(tasker=tasker, **kwargs)
    try:
        assert workflow.client_version == "0.39.1"
        assert workflow.openshift_build_selflink == "/oapi/v1/namespaces/default/builds/app-1"
        assert "client_version" not in workflow.kwargs
        assert "build option client_version='0.39.1' (atomic-reactor 1.6) has no effect" \
            in caplog.text
        workflow.validate()  # every plugin request of that json is valid here
    finally:
        workflow.source.cleanup()


def test_workflow_takes_1_6_keywords_directly(source: dict[str, Any],
                                              tasker: DockerTasker) -> None:
    workflow = DockerBuildWorkflow(source, "app:1", openshift_build_selflink="/oapi/x",
                                   client_version="0.39", tasker=tasker)
    assert workflow.openshift_build_selflink == "/oapi/x"
    workflow.source.cleanup()


def test_names_nobody_ever_had_are_refused(source: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="unknown build option 'clientversion'"):
        DockerBuildWorkflow(source, "app:1", clientversion="0.39")
    with pytest.raises(BuildJsonError, match="unknown key 'openshift_selflink'"):
        BuildRequest.from_mapping(dict(OSBS_BUILD_JSON, source=source, openshift_selflink="x"))
    with pytest.raises(BuildJsonError, match="'client_version' must be a string"):
        BuildRequest.from_mapping(dict(OSBS_BUILD_JSON, source=source, client_version=39))


# -- 4: renamed names ------------------------------------------------------------------------


def test_old_exception_names_warn_and_are_the_new_classes() -> None:
    import atomic_reactor.plugin as plugin_module

    with pytest.warns(DeprecationWarning, match="PluginFailedException is deprecated"):
        plugin_failed = plugin_module.PluginFailedException
    with pytest.warns(DeprecationWarning, match="BuildCanceledException"):
        canceled = plugin_module.BuildCanceledException
    with pytest.warns(DeprecationWarning, match="AutoRebuildCanceledException"):
        autorebuild = plugin_module.AutoRebuildCanceledException
    assert plugin_failed is PluginFailed
    assert canceled is BuildCancelled
    assert autorebuild is AutoRebuildCanceled
    # raised as 1.6 code raised them
    assert str(plugin_failed("plugin broke")) == "plugin broke"
    cancel = canceled("Build was canceled")
    assert str(cancel) == "Build was canceled"
    assert cancel.signum == signal.SIGTERM
    assert str(autorebuild("stop_autorebuild_if_disabled", "autorebuild is disabled")) == \
        "plugin stop_autorebuild_if_disabled canceled autorebuild: autorebuild is disabled"
    with pytest.raises(AttributeError):
        _ = plugin_module.NoSuchName


def test_1_6_plugin_raising_plugin_failed_exception_fails_the_phase(
        tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM scratch\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the file imports the old name
        runner = PreBuildPluginsRunner(workflow.tasker, workflow,
                                       [{"name": "fail_if_asked_16", "args": {"fail": True}}],
                                       plugin_files=[PLUGINS_1_6])
    with pytest.raises(PluginFailed, match="fail_if_asked_16: asked to fail") as caught:
        runner.run()
    assert caught.value.plugin == "fail_if_asked_16"
    assert workflow.plugin_failed
    assert workflow.plugins_errors["fail_if_asked_16"] == "asked to fail"


def _autorebuild_source(tmp_path: Path, enabled: str) -> dict[str, Any]:
    directory = tmp_path / "rebuild-src"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\n")
    (directory / ".osbs-repo-config").write_text(f"[autorebuild]\nenabled = {enabled}\n")
    return {"provider": "path", "uri": "file://" + str(directory)}


def test_cancelled_autorebuild_ends_the_build_as_in_1_6(tmp_path: Path,
                                                         tasker: DockerTasker) -> None:
    workflow = DockerBuildWorkflow(
        _autorebuild_source(tmp_path, "false"), "app:1", tasker=tasker,
        plugin_files=[PLUGINS_1_6],
        prebuild_plugins=[{"name": "check_and_set_rebuild"},
                          {"name": "stop_autorebuild_if_disabled"},
                          {"name": "fail_if_asked_16", "args": {"fail": True}}])
    assert workflow.autorebuild_canceled is False
    with pytest.warns(DeprecationWarning, match="build_docker_image"):
        results = workflow.build_docker_image()
    assert workflow.autorebuild_canceled is True
    assert results.is_failed()
    assert results.error is not None and results.error["type"] == "AutoRebuildCanceled"
    assert "fail_if_asked_16" not in workflow.plugins_timestamps  # the build stopped there
    assert workflow.build_result is None  # nothing was built
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from atomic_reactor.plugin import AutoRebuildCanceledException
    with pytest.raises(AutoRebuildCanceledException, match="autorebuild is disabled"):
        results.raise_for_status()


@pytest.mark.parametrize(("enabled", "rebuild"), [("true", True), ("false", False)])
def test_autorebuild_goes_on_when_enabled_or_not_a_rebuild(
        tmp_path: Path, enabled: str, rebuild: bool) -> None:
    from atomic_reactor.plugins.stop_autorebuild_if_disabled import (
        AutorebuildCheck,
        StopAutorebuildIfDisabledPlugin,
    )

    workflow = make_workflow(tmp_path, "FROM scratch\n",
                             files={".osbs-repo-config": f"[autorebuild]\nenabled={enabled}\n"})
    plugin = StopAutorebuildIfDisabledPlugin(workflow.tasker, workflow, rebuild=rebuild)
    result = plugin.run()
    assert isinstance(result, AutorebuildCheck)
    assert result.rebuild is rebuild
    assert not workflow.autorebuild_canceled


def test_autorebuild_config_unreadable_means_enabled(tmp_path: Path) -> None:
    from atomic_reactor.plugins.stop_autorebuild_if_disabled import (
        StopAutorebuildIfDisabledPlugin,
    )

    workflow = make_workflow(tmp_path, "FROM scratch\n",
                             files={".osbs-repo-config": "[autorebuild]\nenabled = maybe\n"})
    result = StopAutorebuildIfDisabledPlugin(workflow.tasker, workflow, rebuild=True).run()
    assert result.enabled and "unreadable" in result.reason


# -- 6: sources ------------------------------------------------------------------------------


def test_get_source_instance_for_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="provider"):
        get_source_instance_for({"provider": "svn", "uri": "svn://x"})
    with pytest.raises(ValueError, match="unknown source key"):
        get_source_instance_for({"provider": "path", "uri": "file:///x", "branch": "b"})


def test_source_dict_with_1_6_tmpdir_key(src: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "given-tmpdir"
    tmpdir.mkdir()
    source = get_source_instance_for({"provider": "path", "uri": "file://" + str(src),
                                      "tmpdir": str(tmpdir)})
    try:
        assert source.tmpdir == str(tmpdir)
        assert Path(source.get()).parent == tmpdir
    finally:
        source.cleanup()
    assert tmpdir.is_dir()  # given by the caller: not removed


# -- 7: push_conf and exported_image_sequence --------------------------------------------


def test_push_conf_follows_pushes_and_takes_1_6_writes(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM scratch\n")
    workflow.record_push(PushedImage(registry="r:5000", image="r:5000/app:1", digest=DIGEST))
    [registry] = workflow.push_conf.docker_registries
    assert registry.uri == "r:5000"
    assert registry.digests == {"app:1": DIGEST}
    assert workflow.push_conf.has_some_docker_registry
    runner = PostBuildPluginsRunner(workflow.tasker, workflow,
                                    [{"name": "record_push_16", "args": {
                                        "registry": "other:5000", "name": "app:2",
                                        "digest": DIGEST}}],
                                    plugin_files=[PLUGINS_1_6])
    runner.run()
    results = workflow.current_results()
    assert results.digests == {"r:5000": {"r:5000/app:1": DIGEST},
                               "other:5000": {"other:5000/app:2": DIGEST}}
    assert [r.uri for r in workflow.push_conf.all_registries] == ["r:5000", "other:5000"]


def test_exported_dicts_become_exported_images(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM scratch\n")
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"not really a tarball")
    workflow.exported_image_sequence.append({"path": str(archive), "md5sum": "x"})
    last = workflow.exported_image_sequence[-1]
    assert isinstance(last, ExportedImage)
    assert last.size == archive.stat().st_size
    assert len(last.sha256sum) == 64
    assert last["path"] == str(archive)
    assert last.get("md5sum") == "x"
    assert "sha256sum" in last
    assert dict(last)["type"] == "docker-archive"
    workflow.exported_image_sequence[0] = {"path": str(archive), "size": 1, "sha256sum": "y"}
    workflow.exported_image_sequence.extend([{"path": str(archive), "size": 2,
                                              "sha256sum": "z"}])
    assert [e.size for e in workflow.exported_image_sequence] == [1, 2]
    with pytest.raises(Exception, match="with a 'path'"):
        workflow.exported_image_sequence.append({"size": 3})


# -- 9: 1.6 shapes in the results json --------------------------------------------------


def test_results_json_has_1_6_shapes_and_typed_results(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM scratch\n")
    tags = TagsFromConfig(file="additional-tags", tags=("app:1.0", "app:latest"))
    pushed = [PushedImage(registry="r:5000", image="r:5000/app:1.0", digest=DIGEST)]
    workflow.postbuild_results.update({"tag_from_config": tags, "tag_and_push": pushed})
    data = json.loads(workflow.current_results().to_json())
    assert data["built_img_plugins_output"]["tag_from_config"] == ["1.0", "latest"]
    assert data["built_img_plugins_output"]["tag_and_push"] == ["r:5000/app:1.0"]
    typed = data["plugin_results"]["postbuild"]
    assert typed["tag_from_config"]["tags"] == ["app:1.0", "app:latest"]
    assert typed["tag_and_push"][0]["digest"] == DIGEST
    assert workflow.plugin_result("tag_from_config") is tags  # typed access for new code


# -- 10: explicit null --------------------------------------------------------------------


def test_explicit_null_for_optional_argument_takes_the_default(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM scratch\n", files={"help.md": "# help\n"})
    runner = PreBuildPluginsRunner(workflow.tasker, workflow,
                                   [{"name": "add_help", "args": {"help_file": None}}])
    results = runner.run()
    assert results["add_help"] is not None
    with pytest.raises(PluginConfigError, match="help_file"):
        PreBuildPluginsRunner(workflow.tasker, workflow,
                              [{"name": "add_help", "args": {"help_file": 3}}])


# -- 1.6 special values in plugin arguments ---------------------------------------------


def test_special_values_in_plugin_arguments_are_replaced(tmp_path: Path) -> None:
    base = "registry.example.com/base:1"
    workflow = make_workflow(tmp_path, f"FROM {base}\n")
    assert workflow.builder is not None
    workflow.builder.set_image_id("sha256:" + "1" * 64)
    runner = PreBuildPluginsRunner(workflow.tasker, workflow, [{"name": "echo_args_16", "args": {
        "image_id": "BUILT_IMAGE_ID", "nested": {"df": "BUILD_DOCKERFILE_PATH",
                                                 "paths": ["BUILD_SOURCE_PATH", "keep"]},
        "base": "BASE_IMAGE", "other": "BUILT_IMAGE_ID_NOT"}}], plugin_files=[PLUGINS_1_6])
    got = runner.run()["echo_args_16"]
    assert got == {"image_id": "sha256:" + "1" * 64,
                   "nested": {"df": "./", "paths": [workflow.source.path, "keep"]},
                   "base": base, "other": "BUILT_IMAGE_ID_NOT"}


# -- 11: exit plugins among post-build plugins ---------------------------------------------


def test_exit_plugin_runs_among_post_build_plugins(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    workflow = make_workflow(tmp_path, "FROM scratch\n")
    workflow.record_push(PushedImage(registry="r:5000", image="r:5000/app:1", digest=DIGEST))
    with caplog.at_level(logging.WARNING, "atomic_reactor.plugin"):
        runner = PostBuildPluginsRunner(workflow.tasker, workflow,
                                        [{"name": "read_push_conf_16"}],
                                        plugin_files=[PLUGINS_1_6])
    assert "is an exit plugin; running it as a post-build plugin" in caplog.text
    assert runner.run()["read_push_conf_16"] == {"r:5000": {"app:1": DIGEST}}
    # a post-build plugin among the exit plugins is still refused
    with pytest.raises(PluginConfigError, match="postbuild plugin; it cannot run in exit"):
        DockerBuildWorkflow(workflow.source, "x", exit_plugins=[{"name": "tag_and_push",
                                                                 "args": {"registries": {}}}],
                            tasker=workflow.tasker).validate()


# -- 12: empty image ----------------------------------------------------------------------


def test_empty_image_to_inspect_the_base(tmp_path: Path) -> None:
    base = "registry.example.com/base:1"
    fake = fake_tasker({base: image("sha256:base", {"vendor": "x"})})
    workflow = make_workflow(tmp_path, f"FROM {base}\n", tasker=fake)
    builder = InsideBuilder(workflow.source, "", tasker=fake)
    inspect = builder.inspect_base_image()
    assert inspect is not None and inspect["Id"] == "sha256:base"
    assert inspect["Config"]["Labels"] == {"vendor": "x"}
    assert builder.base_image_id == "sha256:base"
    with pytest.raises(InputError, match="cannot build"):
        builder.build()
    empty = DockerBuildWorkflow(workflow.source, "", tasker=fake)
    assert empty.image.repo is None
    with pytest.raises(InputError, match="cannot build"):
        empty.build_container_image()


# -- 13: public names -----------------------------------------------------------------------


def test_build_results_set_one_by_one_round_trip() -> None:
    results: Any = BuildResults()  # 1.6 code: untyped
    results.build_logs = ["Step 1/2 : FROM scratch", "done"]
    results.dockerfile = "FROM scratch\n"
    results.built_img_inspect = {"Id": "sha256:1"}
    results.built_img_info = {"Id": "sha256:1", "RepoTags": ["app:1"]}
    results.base_img_inspect = {"Id": "sha256:0"}
    results.base_img_info = {"Id": "sha256:0"}
    results.base_plugins_output = {"pull_base_image": None}
    results.built_img_plugins_output = {"tag_from_config": ["1.0"]}
    results.container_id = "c0ffee"
    results.return_code = 0
    text = json.dumps(results, cls=BuildResultsEncoder)
    decoded = json.loads(text, cls=BuildResultsJSONDecoder)
    assert isinstance(decoded, BuildResults)
    assert decoded == results
    assert decoded.build_logs == ("Step 1/2 : FROM scratch", "done")
    assert not decoded.is_failed()
    with pytest.raises(AttributeError):
        results.image_id = "sha256:x"  # beyond 1.6: still frozen
    with pytest.raises(TypeError):
        json.dumps(object(), cls=BuildResultsEncoder)
    with pytest.raises(BuildJsonError):
        json.loads("[1]", cls=BuildResultsJSONDecoder)


def test_input_plugins_runner_reads_path_env_and_osv3(
        tmp_path: Path, source: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    build_json = {"source": source, "image": "app:1"}
    path = tmp_path / "build.json"
    path.write_text(json.dumps(build_json))
    result = InputPluginsRunner([{"name": "path", "args": {
        "path": str(path), "substitutions": {"image": "app:2"}}}]).run()
    assert result == {"path": dict(build_json, image="app:2")}

    monkeypatch.setenv("MY_BUILD_JSON", json.dumps(build_json))
    result = InputPluginsRunner([{"name": "env", "args": {"env_name": "MY_BUILD_JSON"}}]).run()
    assert result["env"]["image"] == "app:1"

    monkeypatch.delenv("MY_BUILD_JSON")
    monkeypatch.setenv("BUILD", json.dumps({"spec": {
        "source": {"git": {"uri": "https://example.org/app.git", "ref": "v1"}},
        "output": {"to": {"name": "registry.example.com/app:1"}}}}))
    monkeypatch.setenv("OUTPUT_REGISTRY", "registry.example.com")
    monkeypatch.setenv("ATOMIC_REACTOR_PLUGINS", json.dumps(
        {"prebuild_plugins": [{"name": "pull_base_image"}]}))
    runner = InputPluginsRunner([{"name": "auto", "args": {"path": str(tmp_path / "none")}}])
    assert runner.autoinput
    result = runner.run()
    assert list(result) == ["osv3"]
    assert result["osv3"]["image"] == "app:1"
    assert result["osv3"]["target_registries"] == ["registry.example.com"]
    assert runner.plugins_conf[0]["name"] == "osv3"
    request = BuildRequest.from_mapping(dict(result["osv3"], source=source))
    workflow = DockerBuildWorkflow(**request.workflow_kwargs(),
                                   tasker=DockerTasker(base_url=NO_ENGINE))
    assert workflow.postbuild_plugins_conf[-1]["name"] == "tag_and_push"
    workflow.source.cleanup()


def test_input_plugins_runner_errors_are_the_projects() -> None:
    with pytest.raises(BuildJsonError, match="unknown input 'koji'"):
        InputPluginsRunner([{"name": "koji"}]).run()
    with pytest.raises(PluginConfigError, match="exactly one input"):
        InputPluginsRunner([])
    with pytest.raises(BuildJsonError, match="does not exist"):
        InputPluginsRunner([{"name": "path", "args": {"path": "/nonexistent/b.json"}}]).run()


def test_set_logging_as_1_6_scripts_call_it() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    name = "atomic_reactor.compat16_test"
    logger = set_logging(name=name, level=logging.INFO, handler=Keep())
    try:
        logging.getLogger(name).debug("not kept")
        logging.getLogger(f"{name}.child").info("kept")
        assert [r.getMessage() for r in records] == ["kept"]
        set_logging(name=name, level=logging.INFO)  # replaces the handler: default stderr
        assert len(logger.handlers) == 1
        assert isinstance(logger.handlers[0], logging.StreamHandler)
    finally:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
