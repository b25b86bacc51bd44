"""An image's info and Docker-shaped inspect read from buildah's storage files equal
what ``buildah images`` + ``buildah inspect`` give, field by field.

``BuildahEngine._read_stored`` fills the engine's caches from ``images.json`` and
the image's big-data items (its config, its ``manifest``); a second engine with empty
caches asks buildah. Both are compared for a FROM-only build, a multi-stage build
with labels, env, user, workdir, entrypoint and exposed ports, an image pulled back
from a registry (its manifest then has the compressed layers) and an image with
several names; and the storage-read engine runs no buildah command for them.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._engine.buildah import BuildahEngine
from atomic_reactor._engine.types import BuildOptions, TransferOptions
from tests.integration.helpers import unique, write_context
from tests.support.env import BaseImage

MULTI_STAGE = """\
FROM {base} AS builder
RUN echo built > /artifact
FROM {base}
LABEL com.example.name="stored inspect" com.example.empty="" version=1.2
ENV ONE=1 TWO="two words"
COPY --from=builder /artifact /artifact
EXPOSE 8080/tcp
USER 1001
WORKDIR /srv
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /artifact"]
"""


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Images (ids) or names to remove at the end."""
    images: list[str] = []
    yield images
    for image in reversed(images):
        subprocess.run(["buildah", "rmi", "-f", image], capture_output=True, check=False)


def _build(context: Path, tag: str) -> str:
    engine = BuildahEngine()
    try:
        events = list(engine.build(str(context), tag, BuildOptions()))
    finally:
        engine.close()
    assert not [e for e in events if e.error], "".join(e.message or "" for e in events)
    image_id = events[-1].image_id
    assert image_id
    return image_id


def _assert_same(image_id: str) -> None:
    stored = BuildahEngine()
    asked = BuildahEngine()
    try:
        assert stored._read_stored(image_id), "the storage was not read"
        ran: list[tuple[str, ...]] = []
        run = stored.buildah.run

        def watched(action: str, *args: str, **kwargs: Any) -> str:
            ran.append(args)
            return run(action, *args, **kwargs)

        stored.buildah.run = watched  # type: ignore[method-assign]
        from_storage = (stored.image_info(image_id), stored.inspect_image(image_id))
        assert not ran, f"buildah ran for a stored image: {ran}"
        from_buildah = (asked.image_info(image_id), asked.inspect_image(image_id))
    finally:
        stored.close()
        asked.close()
    for field in dataclasses.fields(from_buildah[0]):
        assert getattr(from_storage[0], field.name) == getattr(from_buildah[0], field.name), \
            field.name
    assert set(from_storage[1]) == set(from_buildah[1])
    for key, value in from_buildah[1].items():
        assert from_storage[1][key] == value, key


def test_from_only_build(base_image: BaseImage, tmp_path: Path, made: list[str]) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image.local}\n")
    tag = f"{unique('bahinspect-from')}:1"
    made.append(f"localhost/{tag}")  # by name: its id may be the base's
    _assert_same(_build(context, tag))
    _assert_same(base_image.image_id)


def test_multi_stage_pulled_and_several_names(base_image: BaseImage, tmp_path: Path,
                                              made: list[str]) -> None:
    dockerfile = MULTI_STAGE.format(base=f"localhost/{base_image.local}")
    context = write_context(tmp_path / "ctx", dockerfile)
    name = unique("bahinspect-multi")
    image_id = _build(context, f"{name}:1")
    made.append(image_id)
    engine = BuildahEngine()
    reference = f"{base_image.registry.address}/{name}:pushed"
    try:
        engine.tag(image_id, f"{name}:2")
        engine.tag(image_id, f"{name}-other:latest")
        _assert_same(image_id)
        info = BuildahEngine().image_info(image_id)
        assert {f"{name}:1", f"{name}:2", f"{name}-other:latest"} <= set(info.names)
        assert info.labels["com.example.name"] == "stored inspect"
        assert "TWO=two words" in info.env

        engine.tag(image_id, reference)
        list(engine.push(reference, None, TransferOptions(insecure=True)))
        engine.remove_image(image_id, force=True)
        events = list(engine.pull(reference, None, TransferOptions(insecure=True)))
        pulled = next(e.image_id for e in reversed(events) if e.image_id)
        assert pulled
        made.append(pulled)
        # the pulled image keeps the config (same id) but its manifest is the registry's
        assert pulled == image_id
        _assert_same(pulled)
        assert BuildahEngine().image_info(pulled).digests
    finally:
        engine.close()


def test_other_storage_falls_back(tmp_path: Path) -> None:
    root, runroot = tmp_path / "root", tmp_path / "run"
    engine = BuildahEngine(root=str(root), runroot=str(runroot), storage_driver="vfs")
    try:
        assert not engine._read_stored("0" * 64)
    finally:
        engine.close()
