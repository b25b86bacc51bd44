"""Unit tests of ``sendmail``: arguments, outcome, rendering, skips (no engine, no SMTP)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._results import PushedImage
from atomic_reactor.errors import BuildCancelled, BuildFailed, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.sendmail import SendMailPlugin, _split_host
from tests.unit.plugins.reporting_fakes import workflow_for_test


@pytest.fixture
def workflow(tmp_path: Path) -> Iterator[DockerBuildWorkflow]:
    yield from workflow_for_test(tmp_path)


def _plugin(workflow: DockerBuildWorkflow, **args: Any) -> SendMailPlugin:
    base: dict[str, Any] = {"smtp_host": "mail.example.com", "from_address": "b@example.com",
                            "to_addresses": ["dev@example.com"]}
    base.update(args)
    validate_plugin_args("sendmail", SendMailPlugin, base)
    return SendMailPlugin(workflow.tasker, workflow, **base)


@pytest.mark.parametrize(("text", "expected"), [
    ("mail.example.com", ("mail.example.com", None)),
    ("mail.example.com:2525", ("mail.example.com", 2525)),
    ("127.0.0.1:25", ("127.0.0.1", 25)),
    ("[::1]:2525", ("::1", 2525)),
    ("[::1]", ("::1", None)),
])
def test_split_host(text: str, expected: tuple[str, int | None]) -> None:
    assert _split_host(text) == expected


@pytest.mark.parametrize(("args", "argument"), [
    ({"smtp_host": "mail:0"}, "smtp_host"),
    ({"smtp_host": "mail:smtp"}, "smtp_host"),
    ({"smtp_host": ":25"}, "smtp_host"),
    ({"smtp_host": "mail:25", "smtp_port": 2525}, "smtp_port"),
    ({"smtp_port": 70000}, "smtp_port"),
    ({"smtp_timeout": 0}, "smtp_timeout"),
    ({"from_address": "not an address"}, "from_address"),
    ({"to_addresses": ["ok@example.com", "nope"]}, "to_addresses"),
    ({"to_addresses": [], "error_addresses": []}, "to_addresses"),
    ({"error_addresses": ["<x@example.com>"]}, "error_addresses"),
    ({"send_on": ["sometimes"]}, "send_on"),
])
def test_bad_arguments(workflow: DockerBuildWorkflow, args: dict[str, Any],
                       argument: str) -> None:
    with pytest.raises(PluginConfigError) as caught:
        _plugin(workflow, **args)
    assert caught.value.argument == argument
    assert "sendmail" in str(caught.value)


def test_ports_and_states(workflow: DockerBuildWorkflow) -> None:
    plugin = _plugin(workflow)
    assert (plugin.smtp_host, plugin.smtp_port) == ("mail.example.com", 25)
    assert plugin.send_on == ("success", "fail", "cancel")
    plugin = _plugin(workflow, smtp_host="mail:25", smtp_port=25,
                     send_on=["auto_canceled", "manual_fail", "auto_fail", "cancel"])
    assert plugin.smtp_port == 25
    assert plugin.send_on == ("cancel", "fail")
    assert _plugin(workflow, smtp_port=2525).smtp_port == 2525


def test_outcome_of_the_build(workflow: DockerBuildWorkflow) -> None:
    plugin = _plugin(workflow, error_addresses=["oncall@example.com", "dev@example.com"])
    assert plugin.state() == "success"
    assert plugin.recipients("success") == ["dev@example.com"]
    workflow.error = BuildFailed("step 2 failed")
    assert plugin.state() == "fail"
    assert plugin.recipients("fail") == ["dev@example.com", "oncall@example.com"]
    workflow.cancelled = workflow.error = BuildCancelled(signal.SIGTERM)
    assert plugin.state() == "cancel"


def test_not_in_send_on_is_a_recorded_skip(workflow: DockerBuildWorkflow,
                                           caplog: pytest.LogCaptureFixture) -> None:
    # port 1 on a name that does not resolve: any attempt to send would fail loudly
    caplog.set_level("INFO", logger="atomic_reactor")
    plugin = _plugin(workflow, smtp_host="smtp.invalid:1", send_on=["fail"])
    outcome = plugin.run()
    assert outcome.sent is False
    assert outcome.state == "success"
    assert outcome.skipped == "the build's outcome (success) is not in send_on"
    assert outcome.error is None
    assert "not sending mail" in caplog.text


def test_only_error_addresses_and_a_success(workflow: DockerBuildWorkflow) -> None:
    plugin = _plugin(workflow, to_addresses=None, error_addresses=["oncall@example.com"],
                     smtp_host="smtp.invalid:1")
    outcome = plugin.run()
    assert outcome.sent is False
    assert outcome.skipped == "no recipients for this outcome"


def test_render_failure(workflow: DockerBuildWorkflow, tmp_path: Path) -> None:
    workflow.error = BuildFailed("The command '/bin/sh -c false'\nreturned a non-zero code: 1")
    workflow.plugins_durations.update({"pull_base_image": 1.5, "docker_build": 3.0})
    workflow.plugins_errors["docker_build"] = "failed"
    workflow.log_file = str(tmp_path / "build.log")
    subject, body = _plugin(workflow, url="https://ci.example.com/b/1").render("fail")
    assert subject == "Failed building image art-unit/app:1.0"
    lines = body.splitlines()
    assert lines[:2] == ["Image: art-unit/app:1.0", "Status: Failed"]
    assert ("Error: The command '/bin/sh -c false' returned a non-zero code: 1") in lines
    assert "    pull_base_image: 1.5 s" in lines
    assert "    docker_build: 3.0 s (failed)" in lines
    assert "Logs: https://ci.example.com/b/1" in lines
    assert f"Log file: {tmp_path / 'build.log'}" in lines
    assert f"Source: {workflow.source.uri}" in lines


def test_render_success_lists_pushes(workflow: DockerBuildWorkflow) -> None:
    digest = "sha256:" + "d" * 64
    workflow.record_push(PushedImage("r:5000", "r:5000/art-unit/app:1.0", digest))
    workflow.record_push(PushedImage("q", "q/art-unit/app:1.0", None))
    subject, body = _plugin(workflow).render("success")
    assert subject == "Succeeded building image art-unit/app:1.0"
    assert f"    r:5000/art-unit/app:1.0@{digest}" in body.splitlines()
    assert "    q/art-unit/app:1.0" in body.splitlines()
    assert "Error:" not in body


def test_render_cancel(workflow: DockerBuildWorkflow) -> None:
    workflow.cancelled = workflow.error = BuildCancelled(signal.SIGINT)
    subject, body = _plugin(workflow).render("cancel")
    assert subject.startswith("Canceled building image")
    assert "Error: build cancelled by SIGINT" in body
