"""The retry settings reach the engine operations by every route: the API's
``retry=`` keyword, the build json's ``"retry"`` and the CLI's ``--retry-attempts``/
``--retry-delay``; and the defaults are the documented ones (docs/retries.md).

Each test counts, at the fault proxy, how many times the manifest PUT was tried:
dockerd does not retry a manifest PUT itself, so that count is our attempts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from atomic_reactor._retry import RetryPolicy
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from atomic_reactor.inner import DockerBuildWorkflow
from tests.integration.faults.support import CliBuild
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage
from tests.support.faultproxy import Fault, FaultProxy

MANIFESTS = "/v2/*/manifests/*"
DOCKERFILE = "FROM {base}\nCOPY payload /payload\n"


@pytest.fixture
def context(tmp_path: Path, base_image: BaseImage) -> Path:
    return write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image.local),
                         {"payload": unique("payload")})


def test_defaults_are_the_documented_ones() -> None:
    policy = DockerTasker(engine=object()).retry  # type: ignore[arg-type]
    assert (policy.attempts, policy.delay, policy.factor, policy.max_delay) == \
        (4, 1.0, 2.0, 30.0)
    assert RetryPolicy() == policy
    doc = (Path(__file__).resolve().parents[3] / "docs" / "retries.md").read_text()
    assert "| attempts | 4 |" in doc and "| delay | 1 |" in doc
    assert "| max_delay | 30 |" in doc


def test_api_retry_keyword_reaches_the_push(context: Path, proxy: FaultProxy) -> None:
    proxy.add(Fault.status(503, path=MANIFESTS, method="PUT", times=2))
    results = build_image_here(path_source(context), f"{unique()}:1", dont_pull_base_image=True,
                               target_registries=[proxy.address],
                               target_registries_insecure=True,
                               retry={"attempts": 3, "delay": 0.01})
    results.raise_for_status()
    assert [p.attempts for p in results.pushed] == [3]
    assert proxy.count("PUT", MANIFESTS) == 3


def test_api_retry_attempts_bound_the_push(context: Path, proxy: FaultProxy) -> None:
    proxy.add(Fault.status(503, path=MANIFESTS, method="PUT", times=None))
    results = build_image_here(path_source(context), f"{unique()}:1", dont_pull_base_image=True,
                               target_registries=[proxy.address],
                               target_registries_insecure=True,
                               retry={"attempts": 2, "delay": 0.01, "max_delay": 0.01})
    assert results.is_failed()
    assert results.exit_code == 4
    assert "503 Service Unavailable" in str(results.exception)
    assert proxy.count("PUT", MANIFESTS) == 2


def test_pull_attempts_are_recorded(tmp_path: Path, base_image: BaseImage,
                                    proxy: FaultProxy) -> None:
    # dockerd asks HEAD then GET for the manifest: both 503, the first pull fails
    proxy.add(Fault.status(503, path=MANIFESTS, times=2))
    context = write_context(tmp_path / "pull-ctx", DOCKERFILE.format(base=base_image.repo),
                            {"payload": unique("payload")})
    results = build_image_here(path_source(context), f"{unique()}:1",
                               parent_registry=proxy.address, parent_registry_insecure=True,
                               retry={"attempts": 3, "delay": 0.01})
    results.raise_for_status()
    pulled = results.plugin_results["prebuild"]["pull_base_image"]
    assert [p["attempts"] for p in pulled] == [2]
    assert pulled[0]["pulled_from"] == f"{proxy.address}/{base_image.repo}"


def test_workflow_retry_policy_and_mapping(context: Path) -> None:
    policy = RetryPolicy(attempts=7, delay=0.5)
    workflow = DockerBuildWorkflow(path_source(context), "x:1", retry=policy)
    assert workflow.tasker.retry is policy
    workflow.source.cleanup()
    workflow = DockerBuildWorkflow(path_source(context), "x:1",
                                   retry={"attempts": 2, "delay": 0.25, "max_delay": 3})
    assert (workflow.tasker.retry.attempts, workflow.tasker.retry.delay,
            workflow.tasker.retry.max_delay) == (2, 0.25, 3)
    workflow.source.cleanup()


def test_build_json_retry_reaches_the_push(
        cli_build: Callable[..., CliBuild], base_image: BaseImage, proxy: FaultProxy) -> None:
    proxy.add(Fault.status(503, path=MANIFESTS, method="PUT", times=None))
    build = cli_build(DOCKERFILE.format(base=base_image.local), {"payload": "x"},
                      dont_pull_base_image=True, target_registries=[proxy.address],
                      target_registries_insecure=True,
                      retry={"attempts": 3, "delay": 0.01, "max_delay": 0.01})
    cli = build.start()
    assert cli.finish() == 4, cli.stderr
    assert proxy.count("PUT", MANIFESTS) == 3
    assert "(attempt 2 of 3)" in cli.stderr
    assert cli.tmp_leftovers() == []


def test_cli_retry_options_reach_the_push(
        cli_build: Callable[..., CliBuild], base_image: BaseImage, proxy: FaultProxy,
        tmp_path: Path) -> None:
    proxy.add(Fault.status(503, path=MANIFESTS, method="PUT", times=1))
    build = cli_build(DOCKERFILE.format(base=base_image.local), {"payload": "y"},
                      dont_pull_base_image=True, target_registries=[proxy.address],
                      target_registries_insecure=True,
                      retry={"attempts": 1, "delay": 30})  # the options win over these
    metadata = tmp_path / "meta.json"
    cli = build.start("--retry-attempts", "2", "--retry-delay", "0.01",
                      "--metadata-file", str(metadata))
    assert cli.finish() == 0, cli.stderr
    assert "(attempt 1 of 2)" in cli.stderr
    assert "retrying in 0.0s" in cli.stderr  # the delay given, not the json's 30 s
    pushed = json.loads(metadata.read_text())["pushed"]
    assert [p["attempts"] for p in pushed] == [2]
    assert proxy.count("PUT", MANIFESTS) == 2


def test_cli_default_is_four_attempts(
        cli_build: Callable[..., CliBuild], base_image: BaseImage, proxy: FaultProxy) -> None:
    proxy.add(Fault.status(503, path=MANIFESTS, method="PUT", times=None))
    build = cli_build(DOCKERFILE.format(base=base_image.local), {"payload": "z"},
                      dont_pull_base_image=True, target_registries=[proxy.address],
                      target_registries_insecure=True)
    cli = build.start()
    assert cli.finish() == 4, cli.stderr
    assert proxy.count("PUT", MANIFESTS) == 4
    assert "(attempt 3 of 4)" in cli.stderr
    assert cli.error_lines() and "503 Service Unavailable" in cli.error_lines()[-1]


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"delay": -1}, {"tries": 3}, "often"])
def test_bad_retry_settings_are_input_errors(
        cli_build: Callable[..., CliBuild], base_image: BaseImage, bad: object) -> None:
    build = cli_build(DOCKERFILE.format(base=base_image.local), dont_pull_base_image=True,
                      retry=bad)
    cli = build.start()
    assert cli.finish() == 2, cli.stderr
    assert len(cli.error_lines()) == 1 and "retry" in cli.error_lines()[0]
    assert "Traceback" not in cli.stderr
    assert cli.tmp_leftovers() == []
