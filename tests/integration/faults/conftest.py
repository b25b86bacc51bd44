"""Fixtures for the fault tests: a fault proxy in front of the registry, a small
unique image (local, or pushed and dropped locally), builds for the CLI."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.faults.support import (
    MARKER_PLUGIN,
    CliBuild,
    UniqueImage,
    drop_local,
)
from tests.integration.helpers import unique, write_context, write_plugin_file
from tests.support.env import BaseImage, Registry, check_stream
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the open ``registry`` (no faults yet)."""
    with FaultProxy(registry.address) as running:
        yield running


@pytest.fixture
def unique_image(engine: docker.APIClient, base_image: BaseImage, tmp_path: Path
                 ) -> UniqueImage:
    """Build (with the SDK, not the code under test) a small image with its own layer."""
    payload = secrets.token_hex(16)
    context = write_context(tmp_path / "unique-ctx", f"FROM {base_image.local}\n"
                            "COPY payload /payload\n", {"payload": payload})
    name, tag = unique("art-fault"), "1"
    entries = check_stream(engine.build(path=str(context), tag=f"{name}:{tag}", rm=True,
                                        forcerm=True, decode=True), "building the test image")
    del entries
    image_id = str(engine.inspect_image(f"{name}:{tag}")["Id"])
    return UniqueImage(name=name, tag=tag, image_id=image_id, payload=payload)


@pytest.fixture
def pushed_unique(engine: docker.APIClient, registry: Registry, unique_image: UniqueImage
                  ) -> UniqueImage:
    """``unique_image`` pushed straight to ``registry``, then removed locally, so a pull
    has a layer to download."""
    target = f"{registry.address}/{unique_image.name}"
    engine.tag(unique_image.image_id, target, unique_image.tag)
    check_stream(engine.push(target, tag=unique_image.tag, stream=True, decode=True),
                 f"pushing {target}")
    drop_local(engine, unique_image.image_id)
    return unique_image


@pytest.fixture
def cli_build(tmp_path: Path) -> Callable[..., CliBuild]:
    """Make a :class:`CliBuild` for a Dockerfile and build json settings."""

    def make(dockerfile: str, files: Mapping[str, str] | None = None,
             touch_engine: bool = False, **settings: Any) -> CliBuild:
        name = unique("art-fault")
        context = write_context(tmp_path / f"ctx-{name}", dockerfile, files)
        marker = tmp_path / f"marker-{name}.json"
        plugin = write_plugin_file(tmp_path / "fault_marker.py", MARKER_PLUGIN)
        data: dict[str, Any] = {
            "source": {"provider": "path", "uri": f"file://{context}"},
            "image": f"{name}:1",
            "exit_plugins": [{"name": "fault_marker",
                              "args": {"path": str(marker), "touch_engine": touch_engine}}],
        }
        data.update(settings)
        build_json = tmp_path / f"build-{name}.json"
        build_json.write_text(json.dumps(data))
        tmpdir = tmp_path / f"tmpdir-{name}"
        tmpdir.mkdir()
        return CliBuild(build_json=build_json, plugin=plugin, marker=marker, image=f"{name}:1",
                        tmpdir=tmpdir)

    return make
