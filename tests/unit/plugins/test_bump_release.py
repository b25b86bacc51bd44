"""bump_release's label handling and release arithmetic (no engine, no registry)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from dockerfile_parse import DockerfileParser

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.build import InsideBuilder
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import DockerfileError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.bump_release import BumpReleasePlugin
from atomic_reactor.source import Source, get_source_instance_for
from tests.support.fake_engine import FakeEngine


def _tasker(env: list[str] | None) -> DockerTasker:
    """A real tasker over a fake engine that has the base image (with ``env``) or not."""
    engine = FakeEngine()
    if env is not None:
        engine.store(ImageInfo(id="sha256:" + "1" * 64, env=tuple(env)), "base:1")
    return DockerTasker(engine=engine)


@pytest.fixture
def sources() -> Iterator[list[Source]]:
    made: list[Source] = []
    yield made
    for source in made:
        source.cleanup()


def _plugin(tmp_path: Path, sources: list[Source], dockerfile: str,
            tags: dict[str, list[str]] | None = None, env: list[str] | None = None,
            buildargs: dict[str, str] | None = None, **kwargs: Any) -> BumpReleasePlugin:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    source = get_source_instance_for({"provider": "path", "uri": f"file://{src}"},
                                     tmpdir=tmp_path / "work")
    sources.append(source)
    tasker = _tasker(env)
    builder = InsideBuilder(source, "built:1", tasker=tasker, buildargs=buildargs or {})
    registries = {registry: {"insecure": True} for registry in (tags or {})}
    workflow = SimpleNamespace(
        builder=builder,
        plugin_args=lambda key: {"registries": registries} if key == "tag_and_push" and tags
        else None)
    plugin = BumpReleasePlugin(tasker, cast("DockerBuildWorkflow", workflow), **kwargs)
    plugin._tags = lambda repository: dict(tags or {})  # type: ignore[method-assign]
    return plugin


def _dockerfile(plugin: BumpReleasePlugin) -> str:
    return Path(plugin.builder.df_path).read_text()


def _last_label_line(plugin: BumpReleasePlugin) -> dict[str, str]:
    """The labels the Dockerfile's last line sets (parsed as the build reads it)."""
    last = _dockerfile(plugin).splitlines()[-1]
    assert last.startswith("LABEL ")
    parser = DockerfileParser(fileobj=io.BytesIO(f"FROM scratch\n{last}\n".encode()))
    return dict(parser.labels)


def test_highest_numeric_release_over_all_registries(tmp_path: Path,
                                                     sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nLABEL name=ns/app version=1.0\n",
                     tags={"r1:5000": ["1.0-1", "1.0-3", "1.0-10a", "1.0.1-20", "latest"],
                           "r2:5000": ["1.0-7", "1.0-x", "11.0-8"]})
    result = plugin.run()
    assert (result.release, result.previous) == ("8", "7")
    assert result.registries == ("r1:5000", "r2:5000")
    assert _dockerfile(plugin).startswith("FROM base:1\nLABEL name=ns/app version=1.0\nLABEL ")
    assert _last_label_line(plugin) == {"release": "8"}


def test_no_tags_gives_1(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nLABEL name=app version=1\n",
                     tags={"r:5000": []})
    assert plugin.run().release == "1"


def test_labels_use_base_env_and_build_args(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1
        ARG VERSION
        LABEL name=$APP version=${VERSION}
    """, tags={"r:5000": ["2.1-4"]}, env=["APP=myapp"], buildargs={"VERSION": "2.1"})
    result = plugin.run()
    assert (result.name, result.version, result.release) == ("myapp", "2.1", "5")


def test_labels_of_the_stage_built_from_count(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1 AS first
        LABEL name=app version=3
        FROM first
        RUN true
    """)
    assert plugin.run().release == "1"


def test_labels_of_other_stages_do_not(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1 AS first
        LABEL name=app version=3 release=4
        FROM base:1
        LABEL name=app version=3
    """)
    assert plugin.run().release == "1"


@pytest.mark.parametrize("label", ["release=2", "Release=2"])
def test_release_set_is_a_recorded_skip(tmp_path: Path, sources: list[Source],
                                        label: str) -> None:
    dockerfile = f"FROM base:1\nLABEL name=app version=1 {label}\n"
    plugin = _plugin(tmp_path, sources, dockerfile, tags={"r:5000": ["1-9"]})
    result = plugin.run()
    assert result.skipped and result.release is None
    assert result.reason == f"the Dockerfile sets {label}"
    assert _dockerfile(plugin) == dockerfile


def test_empty_release_is_bumped(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, 'FROM base:1\nLABEL name=app version=1 release=""\n')
    assert plugin.run().release == "1"


@pytest.mark.parametrize(("labels", "missing"), [
    ("version=1", "'name'"), ("name=app", "'version'"), ('name=app version=""', "'version'"),
])
def test_missing_name_or_version(tmp_path: Path, sources: list[Source], labels: str,
                                 missing: str) -> None:
    plugin = _plugin(tmp_path, sources, f"FROM base:1\nLABEL {labels}\n")
    with pytest.raises(DockerfileError, match=f"sets no {missing} label"):
        plugin.run()


@pytest.mark.parametrize("name", ["App", "app:1", "app@sha256:" + "a" * 64, "a b"])
def test_name_must_be_a_repository(tmp_path: Path, sources: list[Source], name: str) -> None:
    plugin = _plugin(tmp_path, sources, f'FROM base:1\nLABEL "name"="{name}" version=1\n')
    with pytest.raises(DockerfileError, match="label name="):
        plugin.run()


def test_append(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nLABEL name=app version=1 Release=7\n",
                     tags={"r:5000": ["1-7", "1-7.1", "1-7.4", "1-8.9", "1-7.x"]},
                     append=True)
    result = plugin.run()
    assert (result.release, result.previous) == ("7.5", "7.4")
    # the old-style label is kept in step with the new one
    assert _last_label_line(plugin) == {"release": "7.5", "Release": "7.5"}


def test_append_without_release(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nLABEL name=app version=1\n",
                     append=True)
    assert plugin.run().release == "1.1"


def test_append_to_an_odd_release_is_refused(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources,
                     'FROM base:1\nLABEL name=app version=1 release="1 beta"\n', append=True)
    with pytest.raises(DockerfileError, match="can only have letters"):
        plugin.run()


def test_escape_directive_is_respected(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "# escape=`\nFROM base:1\nLABEL name=app version=1\n")
    plugin.run()
    assert _dockerfile(plugin).startswith("# escape=`\nFROM base:1\nLABEL name=app version=1\n")
    assert _last_label_line(plugin) == {"release": "1"}


def test_schema() -> None:
    validate_plugin_args("bump_release", BumpReleasePlugin, {})
    validate_plugin_args("bump_release", BumpReleasePlugin, {"append": True})
    for args in ({"append": "yes"}, {"git_ref": "abc"}):
        with pytest.raises(PluginConfigError):
            validate_plugin_args("bump_release", BumpReleasePlugin, args)
