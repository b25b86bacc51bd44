"""change_from_in_dockerfile without an engine: which FROMs change, to what."""

from __future__ import annotations

from pathlib import Path

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import ImageNotFound, PluginConfigError
from atomic_reactor.plugins.change_from_in_dockerfile import ChangedFrom, ChangeFromPlugin
from atomic_reactor.plugins.pull_base_image import PulledBaseImage
from tests.unit.plugins.dockerfile_fakes import (
    dockerfile,
    fake_tasker,
    image,
    lookups,
    make_workflow,
)

KEY = "change_from_in_dockerfile"
A_ID = "sha256:" + "a" * 64
B_ID = "sha256:" + "b" * 64
STALE = "sha256:" + "0" * 64


def _pulled(*pairs: tuple[str, str]) -> list[PulledBaseImage]:
    return [PulledBaseImage(image=name, pulled_from=f"r.example.com/{name}", image_id=image_id,
                            digest=None) for name, image_id in pairs]


def test_takes_no_arguments() -> None:
    validate_plugin_args(KEY, ChangeFromPlugin, {})
    with pytest.raises(PluginConfigError):
        validate_plugin_args(KEY, ChangeFromPlugin, {"base_image": "x"})


def test_stages_rewritten_to_the_pulled_ids(tmp_path: Path) -> None:
    # the engine's view is stale on purpose: the pulled ids must win
    tasker = fake_tasker({"a:1": image(STALE), "b:2": image(STALE)})
    workflow = make_workflow(tmp_path, """\
        ARG B=b:2
        FROM --platform=linux/amd64 a:1 AS build
        RUN make
        FROM ${B} as Other
        FROM build AS test
        FROM scratch
        FROM other
        COPY --from=test /x /x
    """, tasker=tasker)
    workflow.plugin_results["prebuild"] = {
        "pull_base_image": _pulled(("docker.io/a:1", A_ID), ("b:2", B_ID))}
    assert workflow.builder is not None
    result = ChangeFromPlugin(workflow.tasker, workflow).run()

    assert result == [ChangedFrom(0, "a:1", A_ID, "build"), ChangedFrom(1, "b:2", B_ID, "Other")]
    assert dockerfile(workflow) == (
        "ARG B=b:2\n"
        f"FROM --platform=linux/amd64 {A_ID} AS build\n"
        "RUN make\n"
        f"FROM {B_ID} as Other\n"
        "FROM build AS test\n"
        "FROM scratch\n"
        "FROM other\n"
        "COPY --from=test /x /x\n")
    assert [stage.image for stage in workflow.builder.stages] == [
        A_ID, B_ID, "build", "scratch", "other"]          # refresh_stages() was called
    assert lookups(tasker) == []


def test_falls_back_to_the_engine(tmp_path: Path) -> None:
    tasker = fake_tasker({"a:1": image(A_ID)})
    workflow = make_workflow(tmp_path, "FROM a:1\nRUN true\n", tasker=tasker)
    result = ChangeFromPlugin(workflow.tasker, workflow).run()
    assert result == [ChangedFrom(0, "a:1", A_ID)]
    assert dockerfile(workflow) == f"FROM {A_ID}\nRUN true\n"


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM a:1\n")
    with pytest.raises(ImageNotFound, match=f"{KEY}: FROM a:1 is not on the engine"):
        ChangeFromPlugin(workflow.tasker, workflow).run()
    assert dockerfile(workflow) == "FROM a:1\n"


def test_nothing_to_change(tmp_path: Path) -> None:
    text = f"FROM scratch AS s\nFROM {A_ID}\nFROM s\n"
    workflow = make_workflow(tmp_path, text)
    assert ChangeFromPlugin(workflow.tasker, workflow).run() == []
    assert dockerfile(workflow) == text


def test_idempotent(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM a:1\n", tasker=fake_tasker({"a:1": image(A_ID)}))
    ChangeFromPlugin(workflow.tasker, workflow).run()
    assert ChangeFromPlugin(workflow.tasker, workflow).run() == []
    assert dockerfile(workflow) == f"FROM {A_ID}\n"
