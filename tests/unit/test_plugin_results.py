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
