"""add_dockerfile without an engine: naming, the copy, the instruction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.plugins.add_dockerfile import AddDockerfilePlugin, AddedDockerfile
from tests.unit.plugins.dockerfile_fakes import (
    context_dir,
    dockerfile,
    fake_tasker,
    image,
    make_workflow,
)

KEY = "add_dockerfile"
NVR_DF = "FROM base:1\nLABEL name=ns/app version=1 release=2\n"


def _tasker(labels: dict[str, str] | None = None) -> DockerTasker:
    return fake_tasker({"base:1": image("sha256:b", labels)})


def _run(tmp_path: Path, df: str = NVR_DF, files: dict[str, str] | None = None,
         labels: dict[str, str] | None = None, **args: Any) -> tuple[AddedDockerfile, Any]:
    validate_plugin_args(KEY, AddDockerfilePlugin, args)
    workflow = make_workflow(tmp_path, df, files, tasker=_tasker(labels))
    return AddDockerfilePlugin(workflow.tasker, workflow, **args).run(), workflow


@pytest.mark.parametrize(("args", "argument"), [
    ({"destdir": "root/buildinfo"}, "destdir"),
    ({"destdir": "/root/$X"}, "destdir"),
    ({"nvr": ""}, "nvr"),
    ({"nvr": "a\nb"}, "nvr"),
    ({"nvr": "a-$b"}, "nvr"),
])
def test_bad_arguments(tmp_path: Path, args: dict[str, Any], argument: str) -> None:
    workflow = make_workflow(tmp_path, NVR_DF)
    with pytest.raises(PluginConfigError) as caught:
        AddDockerfilePlugin(workflow.tasker, workflow, **args)
    assert caught.value.argument == argument


def test_schema() -> None:
    with pytest.raises(PluginConfigError):
        validate_plugin_args(KEY, AddDockerfilePlugin, {"use_final_dockerfile": "yes"})


def test_snapshot_named_from_labels(tmp_path: Path) -> None:
    result, workflow = _run(tmp_path)
    path = "/root/buildinfo/Dockerfile-ns-app-1-2"
    instruction = f'COPY ["Dockerfile-ns-app-1-2", "{path}"]'
    assert result == AddedDockerfile(path=path, source="Dockerfile-ns-app-1-2",
                                     nvr="ns-app-1-2", final=False, instruction=instruction)
    assert (context_dir(workflow) / "Dockerfile-ns-app-1-2").read_text() == NVR_DF
    assert dockerfile(workflow) == NVR_DF + instruction + "\n"


def test_old_label_names_and_base_image_labels(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, "FROM base:1\nLABEL Version=3\n",
                     labels={"Name": "n", "release": "r"})
    assert result.nvr == "n-3-r"


def test_nvr_argument_and_final_dockerfile_in_a_subdirectory(tmp_path: Path) -> None:
    context = tmp_path / "src"
    (context / "sub").mkdir(parents=True)
    (context / "sub" / "Dockerfile.build").write_text("FROM base:1\n")
    (context / "Dockerfile").write_text("FROM unused\n")
    workflow = make_workflow(tmp_path, "FROM unused\n", tasker=_tasker(), source={
        "provider": "path", "uri": f"file://{context}", "dockerfile_path": "sub/Dockerfile.build"})
    plugin = AddDockerfilePlugin(workflow.tasker, workflow, nvr="x/y-1-1", destdir="/b",
                                 use_final_dockerfile=True)
    result = plugin.run()
    assert result.source == "Dockerfile.build"
    assert result.path == "/b/Dockerfile-x-y-1-1"
    assert result.final is True
    assert not (context_dir(workflow) / "Dockerfile-x-y-1-1").exists()


def test_missing_labels(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="has no version, release labels; pass nvr") \
            as caught:
        _run(tmp_path, "FROM base:1\nLABEL name=x version=' '\n")
    assert caught.value.plugin == KEY
    assert caught.value.argument == "nvr"


def test_existing_file_is_replaced_and_dockerignore_fixed(tmp_path: Path) -> None:
    result, workflow = _run(tmp_path, files={"Dockerfile-ns-app-1-2": "old",
                                             ".dockerignore": "Dockerfile-*"})
    assert (context_dir(workflow) / result.source).read_text() == NVR_DF
    assert (context_dir(workflow) / ".dockerignore").read_text() == \
        "Dockerfile-*\n!Dockerfile-ns-app-1-2\n"
