"""``sendmail`` after real builds, delivering to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from atomic_reactor.api import build_image_here
from atomic_reactor.errors import BuildCancelled
from tests.integration.helpers import path_source, unique, write_context, write_plugin_file
from tests.support.env import BaseImage, find_free_port

KEY = "sendmail"
FROM = "builds@example.com"
TO = ["dev@example.com", "qa@example.com"]
ERRORS = ["oncall@example.com"]

CANCEL_PLUGIN = '''
import os
import signal
from atomic_reactor.plugin import PrePublishPlugin


class CancelMe(PrePublishPlugin):
    key = "cancel_me"

    def run(self):
        os.kill(os.getpid(), signal.SIGTERM)
'''


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Mailbox:
    """What the SMTP server received; ``reject`` makes it refuse every message."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    reject: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject:
            return self.reject
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    for _attempt in range(5):
        port = find_free_port()
        controller = Controller(box, hostname="127.0.0.1", port=port)
        try:
            controller.start()
        except (OSError, RuntimeError):
            continue
        break
    else:
        pytest.fail("could not start the SMTP server")
    box.port = port
    try:
        yield box
    finally:
        controller.stop()


def _build(tmp_path: Path, base_image: BaseImage, args: dict[str, Any], run: str = "true",
           **extra: Any) -> Any:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN {run}
        """)
    return build_image_here(
        source=path_source(context),
        image=unique("art-test-mail"),
        parent_registry=base_image.registry.address,
        exit_plugins=[{"name": KEY, "args": args}],
        **extra,
    )


def _args(port: int, **more: Any) -> dict[str, Any]:
    return {"smtp_host": f"127.0.0.1:{port}", "from_address": FROM, "to_addresses": TO,
            "error_addresses": ERRORS, "url": "https://builds.example.com/42", **more}


def test_mail_on_success(tmp_path: Path, base_image: BaseImage, mailbox: Mailbox) -> None:
    results = _build(tmp_path, base_image, _args(mailbox.port))
    assert not results.is_failed(), results.error

    assert len(mailbox.received) == 1
    mail = mailbox.received[0]
    assert mail.mail_from == FROM
    assert mail.rcpt_tos == TO  # error addresses only hear about failures
    assert mail.message["Subject"] == f"Succeeded building image {results.image}"
    assert mail.message["From"] == FROM
    assert mail.message["To"] == ", ".join(TO)
    body = mail.message.get_content()
    assert f"Image: {results.image}" in body
    assert "Status: Succeeded" in body
    assert f"Image ID: {results.image_id}" in body
    assert "docker_build:" in body and "pull_base_image:" in body
    assert "Logs: https://builds.example.com/42" in body
    assert "Error:" not in body

    outcome = results.plugin_results["exit"][KEY]
    assert outcome["sent"] is True
    assert outcome["state"] == "success"
    assert outcome["recipients"] == TO
    assert outcome["error"] is None


def test_mail_on_failure_goes_to_error_addresses_too(tmp_path: Path, base_image: BaseImage,
                                                     mailbox: Mailbox) -> None:
    results = _build(tmp_path, base_image, _args(mailbox.port), run="exit 3")
    assert results.is_failed()

    assert len(mailbox.received) == 1
    mail = mailbox.received[0]
    assert mail.rcpt_tos == TO + ERRORS
    assert mail.message["Subject"] == f"Failed building image {results.image}"
    body = mail.message.get_content()
    assert "Status: Failed" in body
    error_lines = [line for line in body.splitlines() if line.startswith("Error: ")]
    assert len(error_lines) == 1 and "3" in error_lines[0]
    assert "docker_build:" in body and "(failed)" in body
    assert results.plugin_results["exit"][KEY]["state"] == "fail"


def test_mail_on_cancel(tmp_path: Path, base_image: BaseImage, mailbox: Mailbox) -> None:
    plugin_file = write_plugin_file(tmp_path / "cancel_plugin.py", CANCEL_PLUGIN)
    with pytest.raises(BuildCancelled) as caught:
        _build(tmp_path, base_image, _args(mailbox.port), prepublish_plugins=[
            {"name": "cancel_me"}], plugin_files=[str(plugin_file)])
    assert len(mailbox.received) == 1
    mail = mailbox.received[0]
    assert mail.message["Subject"].startswith("Canceled building image ")
    assert "cancelled by SIGTERM" in mail.message.get_content()
    assert mail.rcpt_tos == TO
    results = caught.value.results
    assert results is not None
    assert results.plugin_results["exit"][KEY]["state"] == "cancel"


def test_outcome_not_in_send_on_sends_nothing(tmp_path: Path, base_image: BaseImage,
                                              mailbox: Mailbox) -> None:
    results = _build(tmp_path, base_image, _args(mailbox.port, send_on=["fail", "auto_canceled"]))
    assert not results.is_failed(), results.error
    assert mailbox.received == []
    outcome = results.plugin_results["exit"][KEY]
    assert outcome["sent"] is False
    assert "not in send_on" in outcome["skipped"]


def test_server_refusing_the_mail_does_not_fail_the_build(tmp_path: Path, base_image: BaseImage,
                                                          mailbox: Mailbox) -> None:
    mailbox.reject = "550 5.7.1 Message rejected by policy"
    results = _build(tmp_path, base_image, _args(mailbox.port))
    assert not results.is_failed(), results.error
    assert mailbox.received == []
    outcome = results.plugin_results["exit"][KEY]
    assert outcome["sent"] is False
    assert "550" in outcome["error"] and "rejected by policy" in outcome["error"]
    assert KEY not in results.plugins_errors


def test_unreachable_server_does_not_fail_the_build(tmp_path: Path,
                                                    base_image: BaseImage) -> None:
    port = find_free_port()  # nothing listens there
    results = _build(tmp_path, base_image, _args(port))
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["exit"][KEY]
    assert outcome["sent"] is False
    assert "connection refused" in outcome["error"].lower()
    assert outcome["smtp_server"] == f"127.0.0.1:{port}"
