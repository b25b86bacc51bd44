"""tag_and_push chooses its push method from the engine's capabilities, not its name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._engine.buildah import BuildahEngine
from atomic_reactor._engine.docker import DockerEngine
from atomic_reactor._engine.types import EngineCapabilities
from atomic_reactor.plugins.tag_and_push import TagAndPushPlugin, default_push_method
from tests.support.fake_engine import FakeEngine, fake_tasker
from tests.unit.plugins.reporting_fakes import make_workflow

FAST = EngineCapabilities(fast_push=True)


def _plugin(tmp_path: Path, capabilities: EngineCapabilities | None, *,
            reproducible: bool = False, **args: Any) -> TagAndPushPlugin:
    workflow = make_workflow(tmp_path)
    workflow.reproducible = reproducible
    tasker = fake_tasker(FakeEngine(capabilities=capabilities))
    return TagAndPushPlugin(tasker, workflow, registries={"r.example:5000": {}}, **args)


def test_an_engine_with_a_fast_push_pushes_plain_builds_itself(tmp_path: Path) -> None:
    assert _plugin(tmp_path, FAST).push_method == "engine"
    assert _plugin(tmp_path, None).push_method == "registry"  # nothing declared: ours


@pytest.mark.parametrize("args", [{"compression": "zstd"}, {"compression_level": 9},
                                  {"manifest_format": "oci"}])
def test_what_only_our_push_does_takes_our_push(tmp_path: Path, args: dict[str, Any]
                                                ) -> None:
    assert _plugin(tmp_path, FAST, **args).push_method == "registry"


def test_a_reproducible_build_takes_our_push(tmp_path: Path) -> None:
    reproducible = _plugin(tmp_path, FAST, reproducible=True)
    assert reproducible.push_method == "registry"
    # its gzip is the system's zlib (output independent of the CPU), not zlib-ng
    assert reproducible.settings.portable
    assert not _plugin(tmp_path, FAST).settings.portable


def test_our_push_where_it_reads_the_engine_s_storage(tmp_path: Path) -> None:
    direct = EngineCapabilities(fast_push=True, direct_save=True)
    three: dict[str, dict[str, Any]] = {f"r{n}.example:5000": {} for n in range(3)}
    workflow = make_workflow(tmp_path)
    assert _plugin(tmp_path, direct).push_method == "registry"  # one registry
    assert TagAndPushPlugin(fake_tasker(FakeEngine(capabilities=direct)), workflow,
                            registries=three).push_method == "registry"
    assert TagAndPushPlugin(fake_tasker(FakeEngine(capabilities=FAST)), workflow,
                            registries=three).push_method == "engine"  # an archive first
    assert TagAndPushPlugin(fake_tasker(FakeEngine(capabilities=direct)), workflow,
                            registries=three, push_method="engine").push_method == "engine"


def test_an_explicit_method_wins(tmp_path: Path) -> None:
    assert _plugin(tmp_path, FAST, push_method="registry").push_method == "registry"
    assert _plugin(tmp_path, None, push_method="engine").push_method == "engine"


def test_what_the_built_in_engines_declare() -> None:
    assert default_push_method(BuildahEngine.capabilities, plain=True,
                               reproducible=False) == "registry"
    assert default_push_method(DockerEngine.capabilities, plain=True,
                               reproducible=False) == "registry"
    assert BuildahEngine.capabilities.parallel_builds
    assert not DockerEngine.capabilities.parallel_builds


def test_an_engine_declaring_nothing_gets_the_defaults(tmp_path: Path) -> None:
    class Undeclared(FakeEngine):
        capabilities = None  # type: ignore[assignment]  # a backend written before them

    tasker = fake_tasker(Undeclared())
    assert tasker.engine_capabilities == EngineCapabilities()
    plugin = TagAndPushPlugin(tasker, make_workflow(tmp_path), registries={})
    assert plugin.push_method == "registry"
