"""add_help without an engine: skip, title block, go-md2man missing or failing."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._results import jsonable
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.add_help import AddedHelp, AddHelpPlugin
from tests.unit.plugins.dockerfile_fakes import (
    context_dir,
    dockerfile,
    fake_tasker,
    image,
    make_workflow,
)

KEY = "add_help"
DF = "FROM base:1\nLABEL maintainer='Jo <jo@example.com>'\n"


def _workflow(tmp_path: Path, files: dict[str, str] | None = None, df: str = DF
              ) -> DockerBuildWorkflow:
    tasker = fake_tasker({"base:1": image("sha256:b", {"Name": "from-base"})})
    return make_workflow(tmp_path, df, files, tasker=tasker)


def _fake_converter(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "go-md2man"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    sh = shutil.which("sh")
    assert sh is not None
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{Path(sh).parent}")


@pytest.mark.parametrize("help_file", ["/etc/passwd", "../help.md", "a/../../b.md", ""])
def test_help_file_must_stay_in_the_context(tmp_path: Path, help_file: str) -> None:
    workflow = _workflow(tmp_path)
    with pytest.raises(PluginConfigError) as caught:
        AddHelpPlugin(workflow.tasker, workflow, help_file=help_file)
    assert caught.value.argument == "help_file"


def test_schema() -> None:
    validate_plugin_args(KEY, AddHelpPlugin, {"help_file": "docs/help.md"})
    # an explicit null means the default, as in 1.6
    validate_plugin_args(KEY, AddHelpPlugin, {"help_file": None})
    with pytest.raises(PluginConfigError):
        validate_plugin_args(KEY, AddHelpPlugin, {"help_file": 3})


def test_no_help_file_is_a_recorded_skip(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    result = AddHelpPlugin(workflow.tasker, workflow).run()
    assert result == AddedHelp(status="skipped", help_file=None,
                               reason="no help.md in the build context")
    assert result.skipped
    assert jsonable(result)["status"] == "skipped"
    assert dockerfile(workflow) == DF


def test_symlink_out_of_the_context_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("# secret\n")
    workflow = _workflow(tmp_path)
    (context_dir(workflow) / "help.md").symlink_to(outside)
    with pytest.raises(PluginConfigError, match="leads outside the build context"):
        AddHelpPlugin(workflow.tasker, workflow).run()


def test_title_block_added_for_the_conversion(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # a converter that copies its input: shows what go-md2man was given
    _fake_converter(tmp_path, 'in=${1#-in=}; out=${2#-out=}; cat "$in" > "$out"\n', monkeypatch)
    workflow = _workflow(tmp_path, {"help.md": "# NAME\nx\n", ".dockerignore": "*\n"})
    result = AddHelpPlugin(workflow.tasker, workflow).run()
    assert result == AddedHelp(status="generated", help_file="help.md", man_page="/help.1",
                               instruction='COPY ["help.1", "/help.1"]')
    man = (context_dir(workflow) / "help.1").read_text().splitlines()
    assert man[0] == "% from-base (1) Container Image Pages"
    assert man[1] == "% Jo <jo@example.com>"
    assert re.fullmatch(r"% [A-Z][a-z]+ \d{1,2}, \d{4}", man[2])
    assert man[3:] == ["# NAME", "x"]
    assert (context_dir(workflow) / "help.md").read_text() == "# NAME\nx\n"   # untouched
    assert dockerfile(workflow).endswith('\nCOPY ["help.1", "/help.1"]\n')
    assert (context_dir(workflow) / ".dockerignore").read_text() == "*\n!help.1\n"


def test_own_title_block_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_converter(tmp_path, 'cat "${1#-in=}" > "${2#-out=}"\n', monkeypatch)
    workflow = _workflow(tmp_path, {"docs/h.md": "% T(1)\n# NAME\n"})
    AddHelpPlugin(workflow.tasker, workflow, help_file="docs/h.md").run()
    assert (context_dir(workflow) / "help.1").read_text() == "% T(1)\n# NAME\n"


def test_failing_converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_converter(tmp_path, 'echo "bad markdown at line 3" >&2\nexit 3\n', monkeypatch)
    workflow = _workflow(tmp_path, {"help.md": "# x\n"})
    with pytest.raises(AtomicReactorError,
                       match=r"go-md2man failed on help.md \(exit 3\): bad markdown at line 3"):
        AddHelpPlugin(workflow.tasker, workflow).run()
    assert dockerfile(workflow) == DF


def test_converter_writing_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_converter(tmp_path, "exit 0\n", monkeypatch)
    workflow = _workflow(tmp_path, {"help.md": "# x\n"})
    with pytest.raises(AtomicReactorError, match="wrote no man page"):
        AddHelpPlugin(workflow.tasker, workflow).run()


def test_missing_converter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    workflow = _workflow(tmp_path, {"help.md": "# x\n"})
    with pytest.raises(AtomicReactorError, match="go-md2man is not installed"):
        AddHelpPlugin(workflow.tasker, workflow).run()


@pytest.mark.skipif(shutil.which("go-md2man") is None, reason="go-md2man is not installed")
def test_real_converter(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path, {"help.md": "# NAME\nsome **bold** text\n"})
    AddHelpPlugin(workflow.tasker, workflow).run()
    man = (context_dir(workflow) / "help.1").read_text()
    assert ".TH from-base" in man
    assert "\\fBbold\\fP" in man
    assert list(Path(workflow.workdir or "").iterdir()) == []    # its temp dir is gone
