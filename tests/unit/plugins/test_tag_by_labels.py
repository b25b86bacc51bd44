"""tag_by_labels: names from the built image's labels (no container engine)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow, TagConf
from atomic_reactor.plugin import Plugin
from atomic_reactor.plugins.tag_by_labels import TagByLabelsPlugin, unique_tag
from tests.support.fake_engine import fake_tasker


class FakeBuilder:
    def __init__(self, labels: dict[str, str] | None, built: bool = True) -> None:
        self.image_id = "sha256:" + "2" * 64 if built else None
        self.labels = labels

    def built_info(self) -> ImageInfo:
        assert self.image_id is not None
        return ImageInfo(id=self.image_id, labels=self.labels or {})


def _plugin(labels: dict[str, str] | None, built: bool = True, **kwargs: Any
            ) -> TagByLabelsPlugin:
    workflow = SimpleNamespace(builder=FakeBuilder(labels, built), tag_conf=TagConf())
    return TagByLabelsPlugin(fake_tasker(), cast("DockerBuildWorkflow", workflow), **kwargs)


def _names(images: list[Any]) -> list[str]:
    return [str(image) for image in images]


def test_primary_and_unique_names() -> None:
    plugin = _plugin({"name": "ns/app", "version": "1.0", "release": "3", "other": "x"})
    result = plugin.run()
    tag_conf = plugin.workflow.tag_conf

    assert _names(tag_conf.primary_images) == ["ns/app:1.0-3", "ns/app:1.0", "ns/app:latest"]
    assert _names(tag_conf.unique_images) == [f"ns/app:{result.unique_tag}"]
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", result.unique_tag)
    assert result.primary == ("ns/app:1.0-3", "ns/app:1.0", "ns/app:latest")
    assert (result.name, result.version, result.release) == ("ns/app", "1.0", "3")


def test_old_style_labels_and_preference() -> None:
    plugin = _plugin({"Name": "old", "name": "new", "Version": "2", "Release": "1"})
    plugin.run()
    assert _names(plugin.workflow.tag_conf.primary_images) == ["new:2-1", "new:2", "new:latest"]


def test_registry_in_the_name_is_kept() -> None:
    plugin = _plugin({"name": "registry.example:5000/ns/app", "version": "1", "release": "1"})
    plugin.run()
    primary = plugin.workflow.tag_conf.primary_images
    assert primary[0].registry == "registry.example:5000"
    assert primary[0].to_str() == "registry.example:5000/ns/app:1-1"


def test_unique_tag_only() -> None:
    plugin = _plugin({"name": "app"}, unique_tag_only=True)
    result = plugin.run()
    assert plugin.workflow.tag_conf.primary_images == []
    assert len(plugin.workflow.tag_conf.unique_images) == 1
    assert result.primary == () and result.version is None


def test_long_release_is_shortened() -> None:
    plugin = _plugin({"name": "app", "version": "1.0", "release": "r" * 200})
    result = plugin.run()
    tag = result.primary[0].split(":", 1)[1]
    assert len(tag) == 128 and tag.startswith("1.0-rrr")


@pytest.mark.parametrize(("labels", "message"), [
    ({}, "has no labels"),
    (None, "has no labels"),
    ({"version": "1", "release": "1"}, "label 'name' is missing"),
    ({"name": "app", "release": "1"}, "label 'version' is missing"),
    ({"name": "app", "version": "1"}, "label 'release' is missing"),
    ({"name": "app", "version": "", "release": "1"}, "label 'version' is empty"),
    ({"name": "App", "version": "1", "release": "1"}, "is not a repository name"),
    ({"name": "app:1", "version": "1", "release": "1"}, "must not have a tag"),
    ({"name": "app", "version": "1 2", "release": "1"}, "does not make a valid tag"),
    ({"name": "app", "version": "1", "release": "a/b"}, "does not make a valid tag"),
])
def test_bad_labels(labels: dict[str, str] | None, message: str) -> None:
    plugin = _plugin(labels)
    with pytest.raises(AtomicReactorError, match=re.escape(message)):
        plugin.run()
    assert plugin.workflow.tag_conf.primary_images == []


def test_nothing_built() -> None:
    workflow = SimpleNamespace(builder=FakeBuilder({"name": "a"}, built=False),
                               tag_conf=TagConf())
    plugin = TagByLabelsPlugin(fake_tasker(), cast("DockerBuildWorkflow", workflow))
    with pytest.raises(AtomicReactorError, match="nothing was built"):
        plugin.run()


def test_unique_tags_sort_by_time_and_differ() -> None:
    early = unique_tag(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC))
    late = unique_tag(datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC))
    assert early.startswith("20241231T235959-") and early < late
    assert len({unique_tag() for _ in range(50)}) == 50


def test_is_a_postbuild_plugin_with_its_1_6_argument() -> None:
    assert issubclass(TagByLabelsPlugin, Plugin) and TagByLabelsPlugin.phase == "postbuild"
    validate_plugin_args("tag_by_labels", TagByLabelsPlugin, {"unique_tag_only": True})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("tag_by_labels", TagByLabelsPlugin, {"unique_tag_only": "yes"})
