"""Helpers for the integration tests of the Dockerfile-editing pre-build plugins.

Engine-neutral: they look at images through the ``tasker`` fixture (a ``DockerTasker``
for the engine under test), see :mod:`tests.support.images`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from atomic_reactor.api import BuildResults, build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry
from tests.support.images import build_and_push, image_files


def build(base_image: BaseImage, context: Path, prebuild: Sequence[Mapping[str, Any]],
          **kwargs: Any) -> BuildResults:
    """Build ``context`` through the real pipeline, parents pulled from the test registry."""
    return build_image_here(
        source=path_source(context), image=f"{unique('art-test')}:1",
        parent_registry=base_image.registry.address,
        prebuild_plugins=[dict(p) for p in prebuild], **kwargs)


def labels_of(tasker: DockerTasker, image: str) -> dict[str, str]:
    return dict(tasker.image_info(image).labels)


def read_in_image(tasker: DockerTasker, image: str, path: str) -> bytes:
    """The content of the file ``path`` in ``image`` (read from a container never started)."""
    content = image_files(tasker, image).read(path)
    assert content is not None and content != b"<dir>", f"{path} is not a file in {image}"
    return content


def exists_in_image(tasker: DockerTasker, image: str, path: str) -> bool:
    return image_files(tasker, image).exists(path)


def push_parent(tasker: DockerTasker, base_image: BaseImage, dockerfile: str,
                registry: Registry | None = None) -> str:
    """Build ``dockerfile`` (FROM the local base image, ``{base}``) and push it; return
    ``repo:tag``.

    The local name is removed again (the image goes with the test's engine cleanup);
    the registry is per session.
    """
    target = registry or base_image.registry
    repo = f"{unique('art-parent')}:1"
    build_and_push(tasker, dockerfile.replace("{base}", base_image.local),
                   f"{target.address}/{repo}")
    return repo


__all__ = ["build", "exists_in_image", "labels_of", "push_parent", "read_in_image",
           "write_context"]
