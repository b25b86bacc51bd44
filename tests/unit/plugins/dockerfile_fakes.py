"""A workflow with a real path source and builder, and a real tasker over a fake engine.

For the unit tests of the Dockerfile-editing pre-build plugins.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor.build import InsideBuilder
from atomic_reactor.core import DockerTasker
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.source import get_source_instance_for
from tests.support.fake_engine import FakeEngine


def fake_tasker(images: Mapping[str, ImageInfo] | None = None, arch: str = "amd64",
                host: str = "build-host-1") -> DockerTasker:
    """A real tasker over a :class:`FakeEngine` holding ``images`` (name -> image)."""
    engine = FakeEngine(architecture=arch, host=host)
    for name, info in (images or {}).items():
        engine.store(info, name)
    return DockerTasker(engine=engine)


def fake_engine(tasker: DockerTasker) -> FakeEngine:
    assert isinstance(tasker.engine, FakeEngine)
    return tasker.engine


def lookups(tasker: DockerTasker) -> list[str]:
    """The images the engine was asked about (by name or id), in order."""
    return [str(call[1]) for call in fake_engine(tasker).calls
            if call[0] in ("image_info", "inspect_image")]


def image(image_id: str, labels: Mapping[str, str] | None = None,
          env: Mapping[str, str] | None = None) -> ImageInfo:
    """An image as the engine knows it."""
    return ImageInfo(id=image_id, labels=dict(labels or {}),
                     env=tuple(f"{k}={v}" for k, v in (env or {}).items()))


def make_workflow(tmp_path: Path, dockerfile: str, files: Mapping[str, str] | None = None,
                  tasker: DockerTasker | None = None, source: Mapping[str, Any] | None = None,
                  buildargs: Mapping[str, str] | None = None) -> DockerBuildWorkflow:
    """A workflow whose source is fetched and whose builder exists (as pre-build sees it)."""
    context = tmp_path / "src"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    for name, content in (files or {}).items():
        path = context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    fake = tasker or fake_tasker()
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
                                     tasker=fake,
                                     buildargs=dict(buildargs or {}))
    return workflow


def dockerfile(workflow: DockerBuildWorkflow) -> str:
    assert workflow.builder is not None
    return Path(workflow.builder.df_path).read_text()


def context_dir(workflow: DockerBuildWorkflow) -> Path:
    assert workflow.builder is not None
    return Path(workflow.builder.df_dir)
