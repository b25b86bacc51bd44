"""Unit tests of ``store_metadata`` and its schema (no engine)."""

from __future__ import annotations

import json
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from atomic_reactor._results import ExportedImage, PushedImage
from atomic_reactor.errors import (
    AtomicReactorError,
    BuildCancelled,
    PluginConfigError,
    PluginFailed,
    PushError,
)
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.all_rpm_packages import InstalledPackage, PackageList
from atomic_reactor.plugins.store_metadata import (
    StoreMetadataPlugin,
    _repo_digest,
    build_status,
    metadata_schema,
)
from tests.unit.plugins.reporting_fakes import workflow_for_test


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    yield from workflow_for_test(tmp_path)

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def _plugin(workflow: DockerBuildWorkflow, path: Path) -> StoreMetadataPlugin:
    return StoreMetadataPlugin(workflow.tasker, workflow, path=str(path))


def test_schema_is_a_valid_json_schema() -> None:
    schema = metadata_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["status"]["enum"] == ["succeeded", "failed", "cancelled"]


def test_path_argument(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    for bad in ("", f"{tmp_path}/"):
        with pytest.raises(PluginConfigError) as caught:
            StoreMetadataPlugin(workflow.tasker, workflow, path=bad)
        assert caught.value.argument == "path"


def test_build_that_never_got_its_source(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    workflow.error = PushError("push failed", registry="r:5000")
    target = tmp_path / "out" / "metadata.json"
    outcome = _plugin(workflow, target).run()
    assert outcome.status == "failed"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    meta = json.loads(target.read_text())
    jsonschema.validate(meta, metadata_schema())
    assert meta["status"] == "failed"
    assert meta["error"] == {"type": "PushError", "category": "registry",
                             "message": "push failed", "exit_code": 4}
    assert meta["base_image"] is None
    assert meta["dockerfile"] is None
    assert meta["image"] == "art-unit/app:1.0"


def test_pushes_exports_and_packages(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    workflow.tag_conf.add_primary_image("art-unit/app:latest")
    for registry in ("r1:5000", "r2"):
        for ref, digest in (("art-unit/app:1.0", DIGEST), ("art-unit/app:latest", DIGEST)):
            workflow.record_push(PushedImage(registry=registry, image=f"{registry}/{ref}",
                                             digest=digest, size=528))
    workflow.record_push(PushedImage(registry="r3", image="r3/art-unit/app:1.0", digest=None))
    workflow.exported_image_sequence.append(
        ExportedImage(path="/x/image.tar", size=10, sha256sum="c" * 64))
    workflow.plugin_results["postbuild"] = {"all_rpm_packages": PackageList(
        image_id="sha256:1", manager="rpm", packages=(
            InstalledPackage("bash", "5.1", "4.el9", "x86_64"),
            InstalledPackage("tzdata", "2024a", None, None)))}
    workflow.plugins_durations.update({"tag_and_push": 1.5})

    target = tmp_path / "metadata.json"
    assert _plugin(workflow, target).run().status == "succeeded"
    meta = json.loads(target.read_text())
    jsonschema.validate(meta, metadata_schema())
    assert meta["error"] is None
    assert meta["registries"]["r1:5000"] == [
        {"reference": "r1:5000/art-unit/app:1.0", "repository": "art-unit/app", "tag": "1.0",
         "digest": DIGEST, "size": 528},
        {"reference": "r1:5000/art-unit/app:latest", "repository": "art-unit/app",
         "tag": "latest", "digest": DIGEST, "size": 528},
    ]
    assert meta["registries"]["r3"][0]["digest"] is None
    assert meta["digests"]["r2"] == {"r2/art-unit/app:1.0": DIGEST,
                                     "r2/art-unit/app:latest": DIGEST}
    assert "r3" not in meta["digests"]
    assert meta["repositories"]["primary"] == ["r1:5000/art-unit/app:latest",
                                               "r2/art-unit/app:latest",
                                               "r3/art-unit/app:latest"]
    assert meta["repositories"]["unique"] == ["r1:5000/art-unit/app:1.0", "r2/art-unit/app:1.0",
                                              "r3/art-unit/app:1.0"]
    assert meta["exported_images"][0]["sha256sum"] == "c" * 64
    assert meta["packages"] == {"manager": "rpm", "count": 2,
                                "packages": ["bash-5.1-4.el9.x86_64", "tzdata-2024a"]}
    assert meta["plugins"]["durations"] == {"tag_and_push": 1.5}


def test_cancelled_and_plugin_failure_status(workflow: DockerBuildWorkflow) -> None:
    assert build_status(workflow) == "succeeded"
    workflow.plugin_failed = True
    assert build_status(workflow) == "failed"
    workflow.cancelled = workflow.error = BuildCancelled(signal.SIGINT)
    assert build_status(workflow) == "cancelled"
    document = _plugin(workflow, Path("/nonexistent/m.json")).document()
    assert document["error"]["signal"] == signal.SIGINT
    assert document["error"]["exit_code"] == 130


def test_failed_plugin_without_error_gets_an_error(workflow: DockerBuildWorkflow) -> None:
    workflow.plugin_failed = True
    document = _plugin(workflow, Path("/nonexistent/m.json")).document()
    assert document["status"] == "failed"
    assert document["error"]["type"] == "BuildFailed"
    workflow.error = PluginFailed("x: boom", plugin="x", cause=PushError("boom"))
    document = _plugin(workflow, Path("/nonexistent/m.json")).document()
    assert document["error"]["plugin"] == "x"
    assert document["error"]["cause"] == "PushError"


def test_invalid_document_is_not_written(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    workflow.record_push(PushedImage(registry="r", image="r/app:1", digest="not-a-digest"))
    target = tmp_path / "metadata.json"
    with pytest.raises(AtomicReactorError,
                       match=r"does not match its schema at digests/r/r/app:1: .*\(and 1 more\)"):
        _plugin(workflow, target).run()
    assert not target.exists()


def test_result_of_a_failed_pull_plugin_is_ignored(workflow: DockerBuildWorkflow,
                                                   tmp_path: Path) -> None:
    workflow.plugin_results["prebuild"] = {"pull_base_image": PushError("nope")}
    workflow.plugin_results["postbuild"] = {"all_rpm_packages": PushError("nope")}
    document = _plugin(workflow, tmp_path / "m.json").document()
    assert document["parent_images"] == []
    assert document["packages"] is None


@pytest.mark.parametrize(("digests", "wanted", "expected"), [
    (None, "r/a:1", None),
    ((), "r/a:1", None),
    ((f"r/a@{DIGEST}", f"q/b@{OTHER}"), "q/b:2", OTHER),
    ((f"r:5000/ns/a@{DIGEST}",), "ns/a:1", DIGEST),
    ((f"x/other@{DIGEST}",), "r/a:1", DIGEST),  # the only one
    ((f"x/o1@{DIGEST}", f"x/o2@{OTHER}"), "r/a:1", None),  # ambiguous
])
def test_repo_digest(digests: tuple[str, ...] | None, wanted: str, expected: str | None
                     ) -> None:
    from atomic_reactor._engine.base import ImageInfo
    from atomic_reactor._reference import ImageName

    info = None if digests is None else ImageInfo(id="sha256:x", digests=digests)
    assert _repo_digest(info, ImageName.parse(wanted)) == expected
