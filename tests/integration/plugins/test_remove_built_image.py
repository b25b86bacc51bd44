"""``remove_built_image`` through the real pipeline, with real images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context, write_plugin_file
from tests.support.env import BaseImage, Registry
from tests.support.images import image_exists
from tests.support.tracker import Tracker

KEY = "remove_built_image"

DOCKERFILE = """
    FROM {base}
    RUN echo one > /one
    RUN echo two > /two && rm /one
    LABEL built.by=test
    """

PLUGINS = '''
from atomic_reactor.plugin import PostBuildPlugin


class ForeignTag(PostBuildPlugin):
    """Tags the built image with a name this build does not own."""

    key = "test_foreign_tag"

    def __init__(self, tasker, workflow, name: str) -> None:
        super().__init__(tasker, workflow)
        self.name = name

    def run(self) -> str:
        self.tasker.tag_image(self.image_id, self.name)
        return self.name


class RemoveEarly(PostBuildPlugin):
    """Removes the built image's name before the exit plugins run."""

    key = "test_remove_early"

    def run(self) -> str:
        self.tasker.remove_image(str(self.workflow.image))
        return str(self.workflow.image)
'''


def build(tmp_path: Path, base_image: BaseImage, *, image: str | None = None,
          args: dict[str, Any] | None = None, **kwargs: Any) -> tuple[str, Any]:
    context = write_context(tmp_path / "src", DOCKERFILE.format(base=base_image.repo))
    image = image or unique("art-test-rmi")
    plugins = write_plugin_file(tmp_path / "test_plugins.py", PLUGINS)
    results = build_image_here(source=path_source(context), image=image,
                               parent_registry=base_image.registry.address,
                               exit_plugins=[{"name": KEY, "args": args or {}}],
                               plugin_files=[str(plugins)], **kwargs)
    return image, results


def test_removes_everything_the_build_made(tmp_path: Path, tasker: DockerTasker,
                                           base_image: BaseImage, registry: Registry,
                                           engine_cleanup: Tracker) -> None:
    before = engine_cleanup.last_snapshot
    assert before is not None
    pulled = f"{base_image.registry.address}/{base_image.repo}"
    assert not image_exists(tasker, pulled)
    image, results = build(tmp_path, base_image,
                           prepublish_plugins=[{"name": "squash",
                                                "args": {"save_archive": False}}],
                           target_registries=[registry.address],
                           target_registries_insecure=True)
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["exit"][KEY]
    squash = results.plugin_results["prepublish"]["squash"]
    for gone in (results.image_id, squash["original_image_id"], f"{image}:latest",
                 f"{registry.address}/{image}:latest", pulled):
        assert not image_exists(tasker, gone), gone
        assert gone in outcome["removed"]
    assert image_exists(tasker, base_image.local)
    assert any(k["reference"] == base_image.local for k in outcome["kept"])
    # nothing new is left in the engine: no image, no name (intermediate images included)
    now = engine_cleanup.state()
    assert now.image_ids - before.image_ids == set()
    assert set(now.references) - set(before.references) == set()


def test_keeps_the_pulled_base_when_asked(tmp_path: Path, tasker: DockerTasker,
                                          base_image: BaseImage) -> None:
    pulled = f"{base_image.registry.address}/{base_image.repo}"
    image, results = build(tmp_path, base_image, args={"remove_pulled_base_image": False})
    assert not results.is_failed(), results.error
    assert image_exists(tasker, pulled)
    assert not image_exists(tasker, f"{image}:latest")
    assert not image_exists(tasker, str(results.image_id))


def test_image_with_a_foreign_name_is_kept(tmp_path: Path, tasker: DockerTasker,
                                           base_image: BaseImage) -> None:
    foreign = f"{unique('art-test-foreign')}:keep"
    image, results = build(tmp_path, base_image, postbuild_plugins=[
        {"name": "test_foreign_tag", "args": {"name": foreign}}])
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["exit"][KEY]
    assert not image_exists(tasker, f"{image}:latest")
    assert tasker.image_info(foreign).id == results.image_id
    assert [k for k in outcome["kept"] if k["reference"] == results.image_id]


def test_image_that_existed_before_the_build_is_kept(tmp_path: Path, tasker: DockerTasker,
                                                     base_image: BaseImage) -> None:
    first = unique("art-test-rmi-first")
    context = write_context(tmp_path / "first", DOCKERFILE.format(base=base_image.repo))
    earlier = build_image_here(source=path_source(context), image=first,
                               parent_registry=base_image.registry.address)
    assert not earlier.is_failed(), earlier.error
    # the same build again: every step is cached, the result is the earlier image
    image, results = build(tmp_path, base_image, args={"remove_pulled_base_image": False})
    assert not results.is_failed(), results.error
    if results.image_id != earlier.image_id:
        pytest.skip("the engine did not reuse the cached image")
    outcome = results.plugin_results["exit"][KEY]
    assert not image_exists(tasker, f"{image}:latest")  # this build's name goes
    assert tasker.image_info(f"{first}:latest").id == earlier.image_id
    assert [k for k in outcome["kept"] if k["reference"] == results.image_id]


def test_image_already_gone_is_not_an_error(tmp_path: Path, tasker: DockerTasker,
                                            base_image: BaseImage) -> None:
    image, results = build(tmp_path, base_image, args={"remove_pulled_base_image": False},
                           postbuild_plugins=[{"name": "test_remove_early"}])
    assert not results.is_failed(), results.error
    assert KEY not in results.plugins_errors
    outcome = results.plugin_results["exit"][KEY]
    assert f"{image}:latest" in outcome["missing"]
    assert not image_exists(tasker, str(results.image_id))


def test_failed_build_has_nothing_to_remove(tmp_path: Path, base_image: BaseImage) -> None:
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\nRUN exit 3\n")
    results = build_image_here(source=path_source(context), image=unique("art-test-rmi"),
                               parent_registry=base_image.registry.address,
                               exit_plugins=[{"name": KEY}])
    assert results.is_failed()
    assert KEY not in results.plugins_errors
    assert results.plugin_results["exit"][KEY]["removed"] == [
        f"{base_image.registry.address}/{base_image.repo}"]
