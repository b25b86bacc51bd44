"""A workflow for the unit tests of the reporting plugins (exit plugins, package lists).

The workflow is real (``DockerBuildWorkflow``) with a path source; its tasker is
never used, so no engine is contacted. Tests set the state the exit plugins read
(``error``, ``cancelled``, ``pushed_images``, ``plugin_results`` …) directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from atomic_reactor.inner import DockerBuildWorkflow


def make_workflow(tmp_path: Path, image: str = "art-unit/app:1.0") -> DockerBuildWorkflow:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "Dockerfile").write_text("FROM scratch\n")
    workflow = DockerBuildWorkflow(source={"provider": "path", "uri": f"file://{src}"},
                                   image=image)
    workflow.validate()
    return workflow


def workflow_for_test(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    """Body of a ``workflow`` fixture: the workflow, its source cleaned up afterwards."""
    wf = make_workflow(tmp_path)
    try:
        yield wf
    finally:
        wf.source.cleanup()
