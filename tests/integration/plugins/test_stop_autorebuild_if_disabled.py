"""stop_autorebuild_if_disabled in a real build that would otherwise build and push.

An automatic rebuild of a source whose ``.osbs-repo-config`` disables them stops after
the pre-build plugins: nothing is built, tagged or pushed, the exit plugins still run.
A plugin that did nothing would let the build push: the registry is checked.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import BuildResults
from atomic_reactor.core import DockerTasker
from atomic_reactor.inner import DockerBuildWorkflow
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry

KEY = "stop_autorebuild_if_disabled"
PLUGINS_1_6 = str(Path(__file__).resolve().parents[2] / "data" / "compat16" / "plugins_1_6.py")

#: the two ways a build is known to be a rebuild: the plugin's argument, or (as in 1.6)
#: the result of a check_and_set_rebuild plugin run before it
REBUILD_BY: dict[str, list[dict[str, Any]]] = {
    "argument": [{"name": KEY, "args": {"rebuild": True}}],
    "check_and_set_rebuild": [{"name": "check_and_set_rebuild", "args": {"is_rebuild": True}},
                              {"name": KEY}],
}


def _build(base_image: BaseImage, registry: Registry, tmp_path: Path, enabled: str,
           prebuild: list[dict[str, Any]]
           ) -> tuple[DockerBuildWorkflow, BuildResults, str, Path]:
    name = unique()
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\nRUN echo r > /r\n",
                            {".osbs-repo-config": f"[autorebuild]\nenabled = {enabled}\n"})
    metadata = tmp_path / "metadata.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the 1.6 file's old names
        workflow = DockerBuildWorkflow(
            path_source(context), f"{name}:1", plugin_files=[PLUGINS_1_6],
            prebuild_plugins=[{"name": "pull_base_image", "args": {
                "parent_registry": base_image.registry.address,
                "parent_registry_insecure": True}}, *prebuild],
            postbuild_plugins=[{"name": "tag_and_push", "args": {"registries": {
                registry.address: {"insecure": True}}}}],
            exit_plugins=[{"name": "store_metadata", "args": {"path": str(metadata)}}])
        results = workflow.build_container_image()
    return workflow, results, name, metadata


@pytest.mark.parametrize("rebuild_by", sorted(REBUILD_BY))
def test_disabled_autorebuild_stops_before_the_build(
        tasker: DockerTasker, base_image: BaseImage, registry: Registry, tmp_path: Path,
        rebuild_by: str) -> None:
    workflow, results, name, metadata = _build(base_image, registry, tmp_path, "false",
                                               REBUILD_BY[rebuild_by])
    assert workflow.autorebuild_canceled is True
    assert results.is_failed()
    assert results.error is not None and results.error["type"] == "AutoRebuildCanceled"
    assert results.error["plugin"] == KEY
    assert results.error["message"] == f"plugin {KEY} canceled autorebuild: " \
        "autorebuild is disabled"
    # nothing was built, tagged or pushed
    assert results.image_id is None and workflow.build_result is None
    assert tasker.find_image(f"{name}:1") is None
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == []
    # the exit plugins ran, and say why
    written = json.loads(metadata.read_text())
    assert "autorebuild is disabled" in json.dumps(written)


@pytest.mark.parametrize(("enabled", "rebuild_by"),
                         [("true", "argument"), ("true", "check_and_set_rebuild"),
                          ("false", "not a rebuild")])
def test_enabled_autorebuild_or_a_first_build_goes_on(
        tasker: DockerTasker, base_image: BaseImage, registry: Registry, tmp_path: Path,
        enabled: str, rebuild_by: str) -> None:
    prebuild = REBUILD_BY.get(rebuild_by, [{"name": KEY}])
    workflow, results, name, _ = _build(base_image, registry, tmp_path, enabled, prebuild)
    assert not results.is_failed(), results.error
    assert workflow.autorebuild_canceled is False
    rebuild = rebuild_by != "not a rebuild"
    checked = results.plugin_results["prebuild"][KEY]
    assert checked["rebuild"] is rebuild and checked["enabled"] is True
    assert checked["reason"] == ("autorebuild is enabled in .osbs-repo-config" if rebuild
                                 else "not a rebuild")
    assert tasker.find_image(f"{name}:1") is not None
    with RegistryClient(registry.address) as client:
        assert client.list_tags(name) == ["1"]
