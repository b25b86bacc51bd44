"""add_labels_in_dockerfile without an engine: argument checks, label logic, the edit."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._results import jsonable
from atomic_reactor.errors import ImageNotFound, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.add_labels_in_dockerfile import AddedLabels, AddLabelsPlugin
from atomic_reactor.source import VcsInfo
from tests.unit.plugins.dockerfile_fakes import dockerfile, fake_tasker, image, make_workflow

KEY = "add_labels_in_dockerfile"
BASE = "registry.example.com/base:1"


def _workflow(tmp_path: Path, df: str = f"FROM {BASE}\n", labels: dict[str, str] | None = None,
              **kwargs: Any) -> DockerBuildWorkflow:
    tasker = kwargs.pop("tasker", None) or fake_tasker({BASE: image("sha256:base", labels)})
    return make_workflow(tmp_path, df, tasker=tasker, **kwargs)


def _run(workflow: DockerBuildWorkflow, **args: Any) -> AddedLabels:
    validate_plugin_args(KEY, AddLabelsPlugin, args)
    args.setdefault("auto_labels", [])
    return AddLabelsPlugin(workflow.tasker, workflow, **args).run()


def _last_line(workflow: DockerBuildWorkflow) -> str:
    return dockerfile(workflow).rstrip("\n").splitlines()[-1]


# -- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "argument", "text"), [
    ({"labels": {"a": "x\ny"}}, "labels", "control character"),
    ({"labels": {"": "x"}}, "labels", "label name '' is empty"),
    ({"labels": "[1]"}, "labels", "JSON object of strings"),
    ({"labels": "{not json"}, "labels", "JSON object of strings"),
    ({"labels": '{"a": 1}'}, "labels", "JSON object of strings"),
    ({"auto_labels": ["build-date", "colour"]}, "auto_labels", "'colour' is not an automatic"),
    ({"aliases": {"Old": ""}}, "aliases", "alias of 'Old' is empty"),
    ({"dont_overwrite": ["a\rb"]}, "dont_overwrite", "control character"),
])
def test_bad_arguments(tmp_path: Path, args: dict[str, Any], argument: str, text: str) -> None:
    workflow = _workflow(tmp_path)
    with pytest.raises(PluginConfigError, match=re.escape(text)) as caught:
        AddLabelsPlugin(workflow.tasker, workflow, **args)
    assert caught.value.plugin == KEY
    assert caught.value.argument == argument


@pytest.mark.parametrize(("args", "argument"), [
    ({"labels": {"a": 1}}, "labels"),
    ({"labels": ["a"]}, "labels"),
    ({"dont_overwrite": "architecture"}, "dont_overwrite"),
    ({"colour": "red"}, "colour"),
])
def test_schema_refuses_mistyped_arguments(args: dict[str, Any], argument: str) -> None:
    with pytest.raises(PluginConfigError) as caught:
        validate_plugin_args(KEY, AddLabelsPlugin, args)
    assert caught.value.argument == argument


def test_labels_as_a_json_string(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    result = _run(workflow, labels='{"a": "1"}', aliases={})
    assert result.labels == {"a": "1"}


def test_defaults_do_not_leak_between_instances(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    first = AddLabelsPlugin(workflow.tasker, workflow)
    first.labels["x"] = "y"
    first.aliases["x"] = "z"
    second = AddLabelsPlugin(workflow.tasker, workflow)
    assert second.labels == {}
    assert "x" not in second.aliases


# -- labels -------------------------------------------------------------------------------

def test_labels_are_appended_as_one_instruction(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\nCMD [\"sh\"]")
    result = _run(workflow, labels={"b": "2", "a": "it's $X"}, aliases={})
    assert result == AddedLabels(labels={"b": "2", "a": "it's $X"}, kept={},
                                 instruction="LABEL 'b'='2' 'a'='it'\"'\"'s $X'")
    assert dockerfile(workflow) == f"FROM {BASE}\nCMD [\"sh\"]\n{result.instruction}\n"
    assert jsonable(result) == {"labels": {"b": "2", "a": "it's $X"}, "kept": {},
                                "instruction": result.instruction}


def test_values_already_set_are_not_repeated(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\nLABEL df=1\n", labels={"base": "2"})
    before = dockerfile(workflow)
    result = _run(workflow, labels={"df": "1", "base": "2"}, aliases={})
    assert result == AddedLabels(labels={})
    assert dockerfile(workflow) == before


def test_explicit_labels_overwrite_dockerfile_and_base(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\nLABEL df=1\n", labels={"base": "2"})
    result = _run(workflow, labels={"df": "new", "base": "new"}, aliases={})
    assert result.labels == {"df": "new", "base": "new"}


def test_dont_overwrite(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\nLABEL df=1\n", labels={"base": "2"})
    result = _run(workflow, labels={"df": "new", "base": "new", "free": "x"},
                  dont_overwrite=["df", "base", "free"], aliases={})
    assert result.labels == {"free": "x"}
    assert result.kept == {"df": "1", "base": "2"}


def test_dont_overwrite_default_protects_architecture(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, labels={"architecture": "ppc64le"})
    result = _run(workflow, auto_labels=["architecture"])
    assert "architecture" not in result.labels
    assert result.kept == {"architecture": "ppc64le"}
    # aliases go old -> new only (1.6): the old name Architecture is not set anywhere
    assert result.labels == {}


def test_dont_overwrite_if_in_dockerfile_defaults_to_distribution_scope(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\nLABEL distribution-scope=private\n",
                         labels={"other": "base"})
    result = _run(workflow, labels={"distribution-scope": "public", "other": "x"}, aliases={})
    assert result.kept == {"distribution-scope": "private"}
    assert result.labels == {"other": "x"}  # set by the base image only: overwritten


def test_dont_overwrite_if_in_dockerfile_ignores_base_image_labels(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, labels={"distribution-scope": "private"})
    result = _run(workflow, labels={"distribution-scope": "public"}, aliases={},
                  dont_overwrite=[])
    assert result.labels == {"distribution-scope": "public"}
    workflow = _workflow(tmp_path / "2", f"FROM {BASE}\nLABEL x=1\n")
    result = _run(workflow, labels={"x": "2"}, aliases={},
                  dont_overwrite_if_in_dockerfile=["x"])
    assert result.kept == {"x": "1"}


@pytest.mark.parametrize(("base", "df", "explicit", "expected"), [
    # the old name set anywhere, the new one nowhere: the new one gets its value
    ({"Name": "b"}, "", {}, {"name": "b"}),
    ({}, "LABEL Name=d", {}, {"name": "d"}),
    ({}, "", {"Name": "e"}, {"Name": "e", "name": "e"}),
    # one way only: a new name does not give its value to the old one
    ({}, "LABEL name=d", {}, {}),
    ({}, "", {"name": "e"}, {"name": "e"}),
    # both set with different values: both stay (with a warning)
    ({"name": "b"}, "LABEL Name=d", {}, {}),
    ({"Name": "b", "name": "b"}, "", {"name": "e"}, {"name": "e"}),
    ({}, "LABEL name=d Name=x", {}, {}),
    # consistent already: nothing to do
    ({"Name": "b", "name": "b"}, "", {}, {}),
])
def test_aliases_as_in_1_6(tmp_path: Path, base: dict[str, str], df: str,
                           explicit: dict[str, str], expected: dict[str, str]) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\n{df}\n", labels=base)
    result = _run(workflow, labels=explicit, aliases={"Name": "name"})
    assert result.labels == expected


def test_aliases_that_differ_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    workflow = _workflow(tmp_path, f"FROM {BASE}\nLABEL Name=d\n", labels={"name": "b"})
    with caplog.at_level(logging.WARNING):
        _run(workflow, aliases={"Name": "name"})
    assert "labels 'Name'='d' and 'name'='b' (aliases) differ; keeping both" in caplog.text


def test_scratch_has_no_base_labels(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, "FROM scratch\nLABEL Name=x\n", tasker=fake_tasker())
    assert _run(workflow, aliases={"Name": "name"}).labels == {"name": "x"}


def test_base_image_not_pulled_is_a_clear_error(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, tasker=fake_tasker())
    with pytest.raises(ImageNotFound, match=f"{KEY}: the base image {BASE} is not on"):
        _run(workflow, labels={"a": "b"})


def test_backtick_escape_directive_is_honoured(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, f"# escape=`\nFROM {BASE}\n")
    result = _run(workflow, labels={"a": "it's"}, aliases={})
    assert result.instruction == "LABEL 'a'='it'\"'\"'s'"


# -- automatic labels ----------------------------------------------------------------------

def test_automatic_labels(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tasker = fake_tasker({BASE: image("sha256:b")}, arch="arm64", host="builder.example.com")
    workflow = _workflow(tmp_path, tasker=tasker)
    with caplog.at_level(logging.INFO):
        result = _run(workflow, auto_labels=["build-date", "architecture", "vcs-ref",
                                             "com.redhat.build-host"], aliases={})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.labels["build-date"])
    assert result.labels["architecture"] == "aarch64"
    assert result.labels["com.redhat.build-host"] == "builder.example.com"
    assert "vcs-ref" not in result.labels
    assert "not under version control" in caplog.text


def test_vcs_labels_and_explicit_values_win(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    workflow.source.get_vcs_info = lambda: VcsInfo("git", "https://git.example.com/r", "abc123")  # type: ignore[method-assign]
    result = _run(workflow, labels={"vcs-ref": "pinned"},
                  auto_labels=["vcs-type", "vcs-url", "vcs-ref"], aliases={})
    assert result.labels == {"vcs-type": "git", "vcs-url": "https://git.example.com/r",
                             "vcs-ref": "pinned"}


def test_automatic_label_by_its_old_name(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    result = _run(workflow, auto_labels=["Build_Host"])
    assert result.labels == {"Build_Host": "build-host-1", "com.redhat.build-host": "build-host-1"}


def test_unknown_engine_architecture_is_kept(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, tasker=fake_tasker({BASE: image("sha256:b")}, arch="s390x"))
    assert _run(workflow, auto_labels=["architecture"], aliases={}).labels == {
        "architecture": "s390x"}
