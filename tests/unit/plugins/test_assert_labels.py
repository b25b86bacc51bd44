"""assert_labels without an engine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import DockerfileError, PluginConfigError
from atomic_reactor.plugins.assert_labels import AssertedLabels, AssertLabelsPlugin
from tests.unit.plugins.dockerfile_fakes import fake_tasker, image, make_workflow

KEY = "assert_labels"


def _run(tmp_path: Path, df: str, base: dict[str, str] | None = None,
         **args: object) -> AssertedLabels:
    validate_plugin_args(KEY, AssertLabelsPlugin, args)
    workflow = make_workflow(tmp_path, df, tasker=fake_tasker({"b:1": image("sha256:b", base)}))
    return AssertLabelsPlugin(workflow.tasker, workflow, **args).run()  # type: ignore[arg-type]


def test_all_present(tmp_path: Path) -> None:
    result = _run(tmp_path, "FROM b:1\nLABEL name=n Version=1\n", base={"release": "r"})
    assert result == AssertedLabels(labels={"name": "n", "version": "1", "release": "r"},
                                    via_alias={"version": "Version"})


@pytest.mark.parametrize(("df", "base", "missing"), [
    ("FROM b:1\n", None, "labels name, version, release"),
    ("FROM b:1\nLABEL name=n release=\"\"\n", {"version": "1"}, "label release (empty)"),
    ("FROM b:1 AS x\nLABEL name=n version=1 release=1\nFROM b:1\nLABEL name=n\n", None,
     "labels version, release"),
    ("FROM scratch\nLABEL name=n version=1\n", None, "label release;"),
])
def test_missing(tmp_path: Path, df: str, base: dict[str, str] | None, missing: str) -> None:
    with pytest.raises(DockerfileError, match=re.escape(missing)):
        _run(tmp_path, df, base)


def test_custom_required_labels(tmp_path: Path) -> None:
    result = _run(tmp_path, "FROM b:1\nLABEL com.example.team=t\n",
                  required_labels=["com.example.team"])
    assert result.labels == {"com.example.team": "t"}
    with pytest.raises(DockerfileError, match="label vendor;"):
        _run(tmp_path / "2", "FROM b:1\n", required_labels=["vendor"])


def test_bad_arguments(tmp_path: Path) -> None:
    workflow = make_workflow(tmp_path, "FROM b:1\n")
    with pytest.raises(PluginConfigError) as caught:
        AssertLabelsPlugin(workflow.tasker, workflow, required_labels=["name", " "])
    assert caught.value.argument == "required_labels"
    with pytest.raises(PluginConfigError):
        validate_plugin_args(KEY, AssertLabelsPlugin, {"required_labels": "name"})
