"""``sendmail``: mail the build's outcome to the configured addresses over SMTP."""

from __future__ import annotations

import re
import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any, Literal

from atomic_reactor._git import one_line
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.plugin import ExitPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["SEND_ON_STATES", "MailResult", "SendMailPlugin"]

#: the states ``send_on`` may name
SEND_ON_STATES = ("success", "fail", "cancel")
#: atomic-reactor 1.6 state names and the state each means here (there is no
#: "automatic rebuild" distinction any more: auto_* and manual_* are the same)
LEGACY_STATES = {
    "manual_success": "success", "auto_success": "success",
    "manual_fail": "fail", "auto_fail": "fail",
    "manual_canceled": "cancel", "auto_canceled": "cancel",
}
#: what ``send_on`` accepts (the simple states and the 1.6 names)
SendOnState = Literal["success", "fail", "cancel", "manual_success", "auto_success",
                      "manual_fail", "auto_fail", "manual_canceled", "auto_canceled"]
DEFAULT_SMTP_PORT = 25
# local part, "@", a domain with at least one dot; no spaces, no angle brackets
_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ENDSTATE = {"success": "Succeeded", "fail": "Failed", "cancel": "Canceled"}


@dataclass(frozen=True)
class MailResult:
    """What ``sendmail`` did.

    ``sent`` is true when the SMTP server accepted the message for at least one
    recipient; ``refused`` lists recipients it refused. ``skipped`` says why no mail
    was attempted (state not in ``send_on``, no recipients); ``error`` why sending
    failed.
    """

    state: str
    sent: bool
    recipients: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    subject: str | None = None
    skipped: str | None = None
    error: str | None = None
    smtp_server: str | None = field(default=None)


def _split_host(smtp_host: str) -> tuple[str, int | None]:
    """``host[:port]`` (or ``[v6]:port``) -> host, port."""
    text = smtp_host.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError("expected [ipv6]:port")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError("no host")
    if port_text == "":
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {port_text!r}")
    return host, int(port_text)


class SendMailPlugin(ExitPlugin):
    """Send a notification mail about the build's outcome over SMTP.

    ``send_on`` picks the outcomes that are mailed: ``success``, ``fail`` and
    ``cancel`` (the 1.6 names ``manual_success``/``auto_success``,
    ``manual_fail``/``auto_fail`` and ``manual_canceled``/``auto_canceled`` are
    accepted and mean the same). The mail goes to ``to_addresses``; on a failure
    also to ``error_addresses``. Subject and body name the image, the outcome, the
    error message, the source commit, the pushed references, the duration of the
    build and of each step, and where the logs are (``url`` and the log file).

    A mail that cannot be delivered (server unreachable, refusing the message) is
    logged as a warning and never fails the build.

    Result: a :class:`MailResult` (outcome, whether the mail was sent, recipients,
    subject, why it was skipped or why sending failed).
    """

    key = "sendmail"
    is_allowed_to_fail = True

    def __init__(
        self,
        tasker: DockerTasker,
        workflow: DockerBuildWorkflow,
        smtp_host: str,
        from_address: str,
        to_addresses: list[str] | None = None,
        send_on: list[SendOnState] | None = None,
        error_addresses: list[str] | None = None,
        url: str | None = None,
        smtp_port: int | None = None,
        smtp_timeout: float = 30.0,
    ) -> None:
        """
        :param smtp_host: the SMTP server, ``host`` or ``host:port`` (port 25 when not given)
        :param from_address: the sender address (``From``)
        :param to_addresses: the addresses that get the mail
        :param send_on: outcomes to mail about: any of ``success``, ``fail``, ``cancel``
            (default: all three)
        :param error_addresses: further addresses that get the mail when the build failed
        :param url: a link for the build (its logs or its page), put in the body
        :param smtp_port: the SMTP port (instead of ``host:port``)
        :param smtp_timeout: seconds to wait for the SMTP server
        """
        super().__init__(tasker, workflow)

        def bad(argument: str, what: str) -> PluginConfigError:
            return PluginConfigError(f"plugin {self.key}: argument {argument} {what}",
                                     plugin=self.key, argument=argument)

        try:
            host, port = _split_host(smtp_host)
        except ValueError as exc:
            raise bad("smtp_host", f"must be host or host:port ({exc})") from None
        if smtp_port is not None:
            if not 0 < smtp_port < 65536:
                raise bad("smtp_port", "must be between 1 and 65535")
            if port is not None and port != smtp_port:
                raise bad("smtp_port", "contradicts the port given in smtp_host")
            port = smtp_port
        self.smtp_host = host
        self.smtp_port = port or DEFAULT_SMTP_PORT
        if smtp_timeout <= 0:
            raise bad("smtp_timeout", "must be positive")
        self.smtp_timeout = smtp_timeout

        if not _ADDRESS.match(from_address):
            raise bad("from_address", "is not a valid e-mail address")
        self.from_address = from_address
        self.to_addresses = self._addresses("to_addresses", to_addresses, bad)
        self.error_addresses = self._addresses("error_addresses", error_addresses, bad)
        if not self.to_addresses and not self.error_addresses:
            raise bad("to_addresses", "(or error_addresses) must name at least one address")

        states: list[str] = []
        for state in SEND_ON_STATES if send_on is None else send_on:
            simple = LEGACY_STATES.get(state, state)
            if simple not in SEND_ON_STATES:
                raise bad("send_on", f"has unknown state {state!r} "
                                     f"(known: {', '.join(SEND_ON_STATES)})")
            if simple not in states:
                states.append(simple)
        self.send_on = tuple(states)
        self.url = url

    @staticmethod
    def _addresses(argument: str, addresses: list[str] | None,
                   bad: Callable[[str, str], PluginConfigError]) -> tuple[str, ...]:
        out: list[str] = []
        for address in addresses or []:
            if not _ADDRESS.match(address):
                raise bad(argument, f"has an invalid e-mail address {address!r}")
            if address not in out:
                out.append(address)
        return tuple(out)

    # -- what to say ---------------------------------------------------------------
    def state(self) -> str:
        """``success``, ``fail`` or ``cancel``."""
        if self.workflow.cancelled is not None:
            return "cancel"
        if self.workflow.build_process_failed:
            return "fail"
        return "success"

    def recipients(self, state: str) -> list[str]:
        out = list(self.to_addresses)
        if state == "fail":
            out += [address for address in self.error_addresses if address not in out]
        return out

    def render(self, state: str) -> tuple[str, str]:
        """Subject and body of the mail."""
        results = self.workflow.current_results()
        endstate = _ENDSTATE[state]
        image = results.image or str(self.workflow.image)
        subject = f"{endstate} building image {image}"
        lines = [f"Image: {image}", f"Status: {endstate}"]
        if results.image_id:
            lines.append(f"Image ID: {results.image_id}")
        error = results.error or {}
        message = error.get("message") or results.fail_reason
        if message and state != "success":
            lines.append(f"Error: {one_line(str(message))}")
        source = results.source or {}
        if source.get("vcs_url"):
            lines.append(f"Source: {source['vcs_url']} ({source.get('vcs_ref')})")
        elif source.get("uri"):
            lines.append(f"Source: {source['uri']}")
        if results.pushed:
            lines.append("Pushed:")
            lines += [f"    {pushed.image}" + (f"@{pushed.digest}" if pushed.digest else "")
                      for pushed in results.pushed]
        if results.duration is not None:
            lines.append(f"Duration: {results.duration:.1f} s")
        durations = results.plugins_durations
        if durations:
            lines.append("Steps:")
            for key, seconds in durations.items():
                failed = " (failed)" if key in results.plugins_errors else ""
                lines.append(f"    {key}: {seconds:.1f} s{failed}")
        if self.url:
            lines.append(f"Logs: {self.url}")
        if results.log_file:
            lines.append(f"Log file: {results.log_file}")
        return subject, "\n".join(lines) + "\n"

    # -- sending -------------------------------------------------------------------
    def _send(self, recipients: list[str], subject: str, body: str) -> dict[str, Any]:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.from_address
        message["To"] = ", ".join(recipients)
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self.from_address.rsplit("@", 1)[1])
        message.set_content(body)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.smtp_timeout) as smtp:
            refused = smtp.send_message(message, self.from_address, recipients)
        return dict(refused)

    def run(self) -> MailResult:
        state = self.state()
        server = f"{self.smtp_host}:{self.smtp_port}"
        if state not in self.send_on:
            reason = f"the build's outcome ({state}) is not in send_on"
            self.log.info("not sending mail: %s", reason)
            return MailResult(state=state, sent=False, skipped=reason)
        recipients = self.recipients(state)
        if not recipients:
            reason = "no recipients for this outcome"
            self.log.info("not sending mail: %s", reason)
            return MailResult(state=state, sent=False, skipped=reason)
        subject, body = self.render(state)
        self.log.info("sending notification about the %s build to %s via %s",
                      state, ", ".join(recipients), server)
        try:
            refused = self._send(recipients, subject, body)
        except smtplib.SMTPRecipientsRefused as exc:
            error = f"the SMTP server {server} refused every recipient"
            self.log.warning("could not send mail: %s", error)
            return MailResult(state=state, sent=False, recipients=tuple(recipients),
                              refused=tuple(sorted(exc.recipients)), subject=subject,
                              error=error, smtp_server=server)
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error.decode("utf-8", "replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            error = f"the SMTP server {server} answered {exc.smtp_code} {one_line(reply)}"
            self.log.warning("could not send mail: %s", error)
            return MailResult(state=state, sent=False, recipients=tuple(recipients),
                              subject=subject, error=error, smtp_server=server)
        except (smtplib.SMTPException, OSError) as exc:
            reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror
                      else str(exc) or type(exc).__name__)
            if isinstance(exc, socket.timeout):
                reason = "timed out"
            error = f"cannot send mail via {server}: {one_line(reason)}"
            self.log.warning("could not send mail: %s", error)
            return MailResult(state=state, sent=False, recipients=tuple(recipients),
                              subject=subject, error=error, smtp_server=server)
        if refused:
            self.log.warning("the SMTP server refused some recipients: %s",
                             ", ".join(sorted(refused)))
        self.log.info("mail sent")
        return MailResult(state=state, sent=True, recipients=tuple(recipients),
                          refused=tuple(sorted(refused)), subject=subject, smtp_server=server)
