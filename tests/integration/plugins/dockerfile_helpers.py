"""Helpers for the integration tests of the Dockerfile-editing pre-build plugins."""

from __future__ import annotations

import io
import tarfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import docker

from atomic_reactor.api import BuildResults, build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry, check_stream


def build(base_image: BaseImage, context: Path, prebuild: Sequence[Mapping[str, Any]],
          **kwargs: Any) -> BuildResults:
    """Build ``context`` through the real pipeline, parents pulled from the test registry."""
    return build_image_here(
        source=path_source(context), image=f"{unique('art-test')}:1",
        parent_registry=base_image.registry.address,
        prebuild_plugins=[dict(p) for p in prebuild], **kwargs)


def labels_of(engine: docker.APIClient, image: str) -> dict[str, str]:
    return dict(engine.inspect_image(image)["Config"].get("Labels") or {})


def read_in_image(engine: docker.APIClient, image: str, path: str) -> bytes:
    """The content of the file ``path`` in ``image`` (read from a container never started)."""
    container = engine.create_container(image, ["true"])["Id"]
    try:
        stream, _ = engine.get_archive(container, path)
        data = b"".join(stream)
    finally:
        engine.remove_container(container, force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        assert member is not None and member.isfile(), f"{path} is not a file in {image}"
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


def exists_in_image(engine: docker.APIClient, image: str, path: str) -> bool:
    container = engine.create_container(image, ["true"])["Id"]
    try:
        engine.get_archive(container, path)
    except docker.errors.NotFound:
        return False
    finally:
        engine.remove_container(container, force=True)
    return True


def push_parent(engine: docker.APIClient, base_image: BaseImage, dockerfile: str,
                registry: Registry | None = None) -> str:
    """Build ``dockerfile`` (FROM the local base image) and push it; return ``repo:tag``.

    The local tags go away with the test's engine cleanup; the registry is per session.
    """
    target = registry or base_image.registry
    repo = f"{unique('art-parent')}:1"
    text = textwrap.dedent(dockerfile).lstrip().replace("{base}", base_image.local)
    reference = f"{target.address}/{repo}"
    check_stream(engine.build(fileobj=io.BytesIO(text.encode()), tag=reference, rm=True,
                              decode=True), f"build {reference}")
    name, tag = reference.rsplit(":", 1)
    check_stream(engine.push(name, tag, stream=True, decode=True), f"push {reference}")
    engine.remove_image(reference, noprune=True)
    return repo


__all__ = ["build", "exists_in_image", "labels_of", "push_parent", "read_in_image",
           "write_context"]
