"""A workflow with a real path source and builder, and a fake tasker (no engine).

For the unit tests of the Dockerfile-editing pre-build plugins.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atomic_reactor._reference import ImageName
from atomic_reactor.build import InsideBuilder
from atomic_reactor.errors import ImageNotFound
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.source import get_source_instance_for


class FakeTasker:
    """Answers inspect/version/info from dicts; records nothing else."""

    def __init__(self, images: Mapping[str, Mapping[str, Any]] | None = None,
                 arch: str = "amd64", host: str = "build-host-1") -> None:
        self.images = {str(ImageName.parse(k)): dict(v) for k, v in (images or {}).items()}
        self.arch = arch
        self.host = host
        self.inspected: list[str] = []

    def inspect_image(self, image: Any) -> dict[str, Any]:
        key = str(image)
        self.inspected.append(key)
        if key.startswith("sha256:"):
            for data in self.images.values():
                if data.get("Id") == key:
                    return data
            raise ImageNotFound(f"no such image: {key}")
        try:
            return self.images[str(ImageName.parse(key))]
        except KeyError:
            raise ImageNotFound(f"no such image: {key}") from None

    def get_version(self) -> dict[str, Any]:
        return {"Arch": self.arch, "Os": "linux"}

    def get_info(self) -> dict[str, Any]:
        return {"Name": self.host, "Architecture": "x86_64"}


def image(image_id: str, labels: Mapping[str, str] | None = None,
          env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An inspect result."""
    return {"Id": image_id, "Config": {"Labels": dict(labels) if labels is not None else None,
                                       "Env": [f"{k}={v}" for k, v in (env or {}).items()]}}


def make_workflow(tmp_path: Path, dockerfile: str, files: Mapping[str, str] | None = None,
                  tasker: FakeTasker | None = None, source: Mapping[str, Any] | None = None,
                  buildargs: Mapping[str, str] | None = None) -> DockerBuildWorkflow:
    """A workflow whose source is fetched and whose builder exists (as pre-build sees it)."""
    context = tmp_path / "src"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    for name, content in (files or {}).items():
        path = context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    fake = tasker or FakeTasker()
    # the source's copy goes under tmp_path too: nothing is left behind
    (tmp_path / "source-tmp").mkdir(exist_ok=True)
    spec = dict(source or {"provider": "path", "uri": f"file://{context}"})
    workflow = DockerBuildWorkflow(
        source=get_source_instance_for(spec, tmpdir=tmp_path / "source-tmp"),
        image="art-unit:1", tasker=fake, buildargs=dict(buildargs or {}))
    workflow.source.get()
    workflow.workdir = str(tmp_path / "workdir")
    Path(workflow.workdir).mkdir()
    workflow.builder = InsideBuilder(workflow.source, workflow.image,
                                     tasker=fake,  # type: ignore[arg-type]
                                     buildargs=dict(buildargs or {}))
    return workflow


def dockerfile(workflow: DockerBuildWorkflow) -> str:
    assert workflow.builder is not None
    return Path(workflow.builder.df_path).read_text()


def context_dir(workflow: DockerBuildWorkflow) -> Path:
    assert workflow.builder is not None
    return Path(workflow.builder.df_dir)
