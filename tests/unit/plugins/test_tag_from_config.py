"""tag_from_config: reading additional-tags (no container engine)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow, TagConf
from atomic_reactor.plugins import tag_from_config as module
from atomic_reactor.plugins.tag_from_config import TagFromConfigPlugin
from tests.support.fake_engine import fake_tasker


class FakeBuilder:
    def __init__(self, df_dir: Path, labels: dict[str, str]) -> None:
        self.df_dir = str(df_dir)
        self.image_id = "sha256:" + "3" * 64
        self.labels = labels

    def built_info(self) -> ImageInfo:
        return ImageInfo(id=self.image_id, labels=self.labels)


def _plugin(root: Path, tags_file: str | None, labels: dict[str, str] | None = None,
            df_subdir: str = "", where: str = "df_dir") -> TagFromConfigPlugin:
    df_dir = root / df_subdir
    df_dir.mkdir(parents=True, exist_ok=True)
    if tags_file is not None:
        target = df_dir if where == "df_dir" else root
        (target / "additional-tags").write_text(tags_file)
    workflow = SimpleNamespace(
        builder=FakeBuilder(df_dir, labels if labels is not None else {"name": "ns/app"}),
        source=SimpleNamespace(path=str(root)), tag_conf=TagConf())
    return TagFromConfigPlugin(fake_tasker(), cast("DockerBuildWorkflow", workflow))


def test_tags(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "v1\n\t stable \r\n\n# comment\nv2  # trailing comment\n"
                               "has-dash\n.dot\nway" + "x" * 200 + "\nv1\n")
    result = plugin.run()
    assert result.tags == ("ns/app:v1", "ns/app:stable", "ns/app:v2")
    assert [str(i) for i in plugin.workflow.tag_conf.primary_images] == list(result.tags)
    assert plugin.workflow.tag_conf.unique_images == []
    assert result.ignored[:2] == ("has-dash", ".dot")
    assert len(result.ignored) == 3
    assert result.file == "additional-tags"
    assert not result.skipped


def test_old_style_name_label(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "v1\n", labels={"Name": "old"})
    assert plugin.run().tags == ("old:v1",)


def test_file_next_to_the_dockerfile_wins(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "beside\n", df_subdir="sub")
    (tmp_path / "additional-tags").write_text("root\n")
    result = plugin.run()
    assert result.tags == ("ns/app:beside",) and result.file == "sub/additional-tags"


def test_file_in_the_source_root_is_used_otherwise(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "root\n", df_subdir="sub", where="root")
    assert plugin.run().tags == ("ns/app:root",)


def test_missing_file_is_a_recorded_skip(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, None, labels={})
    result = plugin.run()
    assert result.skipped and result.reason == "the source has no additional-tags file"
    assert plugin.workflow.tag_conf.primary_images == []


def test_file_without_usable_tags_needs_no_name(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "# nothing\nwith-dash\n", labels={})
    result = plugin.run()
    assert result.tags == () and result.ignored == ("with-dash",) and not result.skipped


def test_missing_name_label(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, "v1\n", labels={"version": "1"})
    with pytest.raises(AtomicReactorError, match="no 'name' label"):
        plugin.run()


def test_too_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "MAX_TAGS_FILE_BYTES", 10)
    plugin = _plugin(tmp_path, "v1\nv2\nv3\nv4\nv5\n")
    with pytest.raises(AtomicReactorError, match="the limit is 10"):
        plugin.run()


def test_takes_no_arguments() -> None:
    validate_plugin_args("tag_from_config", TagFromConfigPlugin, {})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("tag_from_config", TagFromConfigPlugin, {"tag_suffixes": {}})
