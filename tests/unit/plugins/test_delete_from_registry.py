"""Unit tests of ``delete_from_registry``: arguments and bookkeeping (no registry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._results import PushedImage
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.delete_from_registry import DeleteFromRegistryPlugin, _hostname
from tests.unit.plugins.reporting_fakes import workflow_for_test


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    yield from workflow_for_test(tmp_path)

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def _plugin(workflow: DockerBuildWorkflow, registries: dict[str, Any]
            ) -> DeleteFromRegistryPlugin:
    validate_plugin_args("delete_from_registry", DeleteFromRegistryPlugin,
                         {"registries": registries})
    return DeleteFromRegistryPlugin(workflow.tasker, workflow, registries=registries)


@pytest.mark.parametrize(("given", "expected"), [
    ("r.example.com:5000", ("r.example.com:5000", False)),
    ("https://r.example.com/v2/", ("r.example.com", False)),
    ("http://127.0.0.1:5000", ("127.0.0.1:5000", True)),
    ("r.example.com/", ("r.example.com", False)),
])
def test_hostname(given: str, expected: tuple[str, bool]) -> None:
    assert _hostname(given) == expected


def test_arguments(workflow: DockerBuildWorkflow) -> None:
    with pytest.raises(PluginConfigError, match="needs the argument 'registries'"):
        validate_plugin_args("delete_from_registry", DeleteFromRegistryPlugin, {})
    with pytest.raises(PluginConfigError) as caught:
        _plugin(workflow, {"r:5000": {"insecure": "yes"}})
    assert caught.value.argument == "registries"
    with pytest.raises(PluginConfigError):
        _plugin(workflow, {"r:5000": {"password": "x"}})
    with pytest.raises(PluginConfigError, match="empty registry name"):
        _plugin(workflow, {"https://": {}})
    plugin = _plugin(workflow, {"http://a:5000": {}, "b": {"insecure": True, "secret": "/s"},
                                "c": None})
    assert plugin.registries == {"a:5000": (True, None), "b": (True, "/s"), "c": (False, None)}


def test_nothing_pushed_nothing_deleted(workflow: DockerBuildWorkflow,
                                        caplog: pytest.LogCaptureFixture) -> None:
    workflow.record_push(PushedImage("elsewhere:5000", "elsewhere:5000/app:1", DIGEST))
    # the registry does not exist: any request would fail
    assert _plugin(workflow, {"registry.invalid:1": {}}).run() == []
    assert "pushed nothing there" in caplog.text


def test_pushes_are_grouped_by_manifest(workflow: DockerBuildWorkflow) -> None:
    for ref, digest in (("app:1", DIGEST), ("app:latest", DIGEST), ("app:1", DIGEST),
                        ("other/app:1", DIGEST), ("app:2", OTHER), ("app:3", None)):
        workflow.record_push(PushedImage("r:5000", f"r:5000/{ref}", digest))
    workflow.record_push(PushedImage("q:5000", "q:5000/app:1", DIGEST))
    plugin = _plugin(workflow, {"https://r:5000": {}})
    assert plugin._pushed_to("r:5000") == {
        ("app", DIGEST): ["r:5000/app:1", "r:5000/app:latest"],
        ("other/app", DIGEST): ["r:5000/other/app:1"],
        ("app", OTHER): ["r:5000/app:2"],
        ("app", None): ["r:5000/app:3"],
    }


def test_push_without_digest_is_not_deleted(workflow: DockerBuildWorkflow) -> None:
    workflow.record_push(PushedImage("registry.invalid:1", "registry.invalid:1/app:1", None))
    outcomes = _plugin(workflow, {"registry.invalid:1": {}}).run()
    assert [(o.repository, o.digest, o.status) for o in outcomes] == [("app", None, "no_digest")]
