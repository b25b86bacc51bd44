"""Reading another plugin's result typed: DockerBuildWorkflow.result_of / result_items."""

from __future__ import annotations

from pathlib import Path

from atomic_reactor.errors import PluginFailed
from atomic_reactor.plugin import PHASE_EXIT, PHASE_PREBUILD
from atomic_reactor.plugins.pull_base_image import PulledBaseImage
from atomic_reactor.plugins.squash import SquashResult
from tests.unit.plugins.dockerfile_fakes import make_workflow


def test_typed_results(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM a:1\n")
    pulled = PulledBaseImage(image="a:1", pulled_from="r/a:1", image_id="sha256:a", digest=None)
    workflow.plugin_results[PHASE_PREBUILD] = {"pull_base_image": [pulled, "stray"],
                                               "other": "text"}
    workflow.plugin_results[PHASE_EXIT] = {"squash": PluginFailed("boom", plugin="squash")}
    assert workflow.result_items("pull_base_image", PulledBaseImage) == [pulled]
    assert workflow.result_items("other", PulledBaseImage) == []
    assert workflow.result_items("missing", PulledBaseImage) == []
    assert workflow.result_of("other", str) == "text"
    assert workflow.result_of("other", SquashResult) is None
    assert workflow.result_of("squash", SquashResult) is None  # it failed
    assert workflow.result_of("missing", SquashResult) is None


def test_the_builder_builds_once_with_its_options(tmp_path: Path) -> None:
    from atomic_reactor._engine.base import BuildOptions
    from tests.unit.plugins.dockerfile_fakes import fake_engine, fake_tasker, image

    tasker = fake_tasker({"a:1": image("sha256:" + "a" * 64)})
    workflow = make_workflow(tmp_path, "FROM a:1\nARG X\n", tasker=tasker,
                             buildargs={"X": "1"})
    builder = workflow.builder
    assert builder is not None
    builder.build_options = BuildOptions(labels={"l": "v"}, target="t", buildargs={"Y": "2"})
    builder.timestamp = 5
    result = builder.build()
    assert not result.is_failed() and result.image_id == builder.image_id
    builds = [call for call in fake_engine(tasker).calls if call[0] == "build"]
    assert len(builds) == 1
    options = builds[0][3]
    assert options.buildargs == {"Y": "2", "X": "1"} and options.timestamp == 5
    assert (options.labels, options.target, options.dockerfile) == ({"l": "v"}, "t",
                                                                     "Dockerfile")
    assert builder.built_info().labels == {"l": "v"}
    assert builder.base_info() is not None and builder.base_image_id == "sha256:" + "a" * 64
