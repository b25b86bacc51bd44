"""Unit tests of multi-platform workflows on the in-memory engine: one build per
platform, per-platform plugins run per platform with the workflow switched, others
once, the built architecture checked, a failing platform named."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from atomic_reactor._engine.base import BuildOptions, EngineEvent
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import BuildFailed
from atomic_reactor.inner import DockerBuildWorkflow
from tests.support.fake_engine import FakeEngine

PLUGINS = '''
from atomic_reactor.plugin import ExitPlugin, PostBuildPlugin, PrePublishPlugin


class PerPlatform(PrePublishPlugin):
    key = "per_platform_probe"
    per_platform = True

    def run(self):
        return {"platform": str(self.workflow.platform), "image_id": self.image_id,
                "tag": str(self.builder.image)}


class Once(PostBuildPlugin):
    key = "once_probe"

    def run(self):
        seen = self.workflow.plugin_result("per_platform_probe")
        return {"platform": self.workflow.platform, "image_id": self.image_id,
                "states": [str(s.platform) for s in self.workflow.platform_states],
                "seen_outside": seen}


class Record(ExitPlugin):
    key = "record_probe"

    def run(self):
        return {"failed": self.workflow.build_process_failed}
'''


class PlatformEngine(FakeEngine):
    """Builds images of the platform asked for (as a real engine does)."""

    def _build(self, context_dir: str, tag: str, options: BuildOptions
               ) -> Iterator[EngineEvent]:
        for event in super()._build(context_dir, tag, options):
            if event.image_id and options.platform is not None:
                info = self.images[event.image_id]
                self.images[event.image_id] = replace(
                    info, architecture=options.platform.architecture)
            yield event


def _workflow(tmp_path: Path, engine: FakeEngine, **kwargs: Any) -> DockerBuildWorkflow:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    plugins = tmp_path / "probes.py"
    plugins.write_text(PLUGINS)
    return DockerBuildWorkflow(
        {"provider": "path", "uri": f"file://{context}"}, "app:1",
        prepublish_plugins=[{"name": "per_platform_probe"}],
        postbuild_plugins=[{"name": "once_probe"}],
        exit_plugins=[{"name": "record_probe"}],
        plugin_files=[str(plugins)], tasker=DockerTasker(engine=engine),
        platforms=["linux/amd64", "linux/arm64"], **kwargs)


def test_one_build_per_platform_and_plugins_per_platform_or_once(tmp_path: Path) -> None:
    engine = PlatformEngine()
    results = _workflow(tmp_path, engine).build_container_image()
    results.raise_for_status()
    builds = [call for call in engine.calls if call[0] == "build"]
    assert [str(call[3].platform) for call in builds] == ["linux/amd64", "linux/arm64"]
    assert [call[2] for call in builds] == ["app:1-linux-amd64", "app:1-linux-arm64"]

    amd, arm = results.platforms
    assert (amd.platform, amd.architecture, arm.platform, arm.architecture) == (
        "linux/amd64", "amd64", "linux/arm64", "arm64")
    assert amd.image_id != arm.image_id
    for result in (amd, arm):
        probe = result.plugin_results["prepublish"]["per_platform_probe"]
        assert probe["platform"] == result.platform
        assert probe["image_id"] == result.image_id
        assert probe["tag"] == f"app:1-{result.platform.replace('/', '-')}"
    assert "per_platform_probe" not in results.plugin_results.get("prepublish", {})
    once = results.plugin_results["postbuild"]["once_probe"]
    assert once["platform"] is None and once["seen_outside"] is None
    assert once["states"] == ["linux/amd64", "linux/arm64"]
    assert once["image_id"] == amd.image_id == results.image_id  # 1.6 fields: the first
    assert "per_platform_probe[linux/arm64]" in results.plugins_durations


def test_an_image_of_the_wrong_architecture_fails_its_platform(tmp_path: Path) -> None:
    engine = FakeEngine(architecture="amd64")  # ignores --platform, as a cached base can
    results = _workflow(tmp_path, engine).build_container_image()
    assert results.is_failed()
    error = results.exception
    assert isinstance(error, BuildFailed)
    assert "the build for linux/arm64 failed" in str(error)
    assert "built a linux/amd64 image, not linux/arm64" in str(error)
    assert results.plugin_results["exit"]["record_probe"] == {"failed": True}
    assert "prepublish" not in results.plugin_results or \
        not results.plugin_results["prepublish"]
    arm = results.platforms[1]
    assert arm.fail_reason is not None and "not linux/arm64" in arm.fail_reason


def test_without_platforms_nothing_is_per_platform(tmp_path: Path) -> None:
    engine = PlatformEngine()
    workflow = _workflow(tmp_path, engine)
    workflow.platforms = ()
    results = workflow.build_container_image()
    results.raise_for_status()
    [build] = [call for call in engine.calls if call[0] == "build"]
    assert build[2] == "app:1" and build[3].platform is None
    assert results.platforms == () and results.manifest_lists == ()
    assert results.plugin_results["prepublish"]["per_platform_probe"]["platform"] == "None"


def test_platform_jobs(monkeypatch: Any) -> None:
    from atomic_reactor._engine.buildah import BuildahEngine
    from atomic_reactor._engine.docker import DockerEngine
    from atomic_reactor._multiplatform import JOBS_ENV, platform_jobs

    buildah, docker = BuildahEngine.capabilities, DockerEngine.capabilities
    monkeypatch.delenv(JOBS_ENV, raising=False)
    assert platform_jobs(buildah, 2) == 2
    assert platform_jobs(docker, 2) == 1
    assert platform_jobs(buildah, 1) == 1
    monkeypatch.setenv(JOBS_ENV, "1")
    assert platform_jobs(buildah, 3) == 1
    monkeypatch.setenv(JOBS_ENV, "8")
    assert platform_jobs(docker, 3) == 3
    monkeypatch.setenv(JOBS_ENV, "lots")
    assert platform_jobs(docker, 3) == 1
