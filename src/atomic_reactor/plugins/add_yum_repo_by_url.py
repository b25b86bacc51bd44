"""``add_yum_repo_by_url``: fetch yum repo files for ``inject_yum_repo`` to put into the build."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests

from atomic_reactor._repofiles import (
    RepoFile,
    display_url,
    repo_filename,
    repo_sections,
    set_proxy,
)
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["MAX_REPO_FILE_BYTES", "AddYumRepoByUrlPlugin", "RepoFile"]

#: a repo file larger than this is refused (repo files are a few lines of INI)
MAX_REPO_FILE_BYTES = 1024 * 1024
#: seconds to wait for the connection, and then between bytes of the answer
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class RepoFetchError(AtomicReactorError):
    """A repo file could not be fetched or is not a repo file."""


def _reason(exc: requests.RequestException) -> str:
    """Why a request failed, without the exception's text (it can hold the URL)."""
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        if "certificate verify failed" in text:
            return "TLS error: certificate verify failed"
        return "TLS error"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the connection timed out"
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        for marker, reason in (
            ("Connection refused", "connection refused"),
            ("Name or service not known", "the host name does not resolve"),
            ("nodename nor servname", "the host name does not resolve"),
            ("Temporary failure in name resolution", "temporary failure in name resolution"),
            ("Connection reset", "connection reset"),
            ("RemoteDisconnected", "connection reset by the server"),
            ("timed out", "the connection timed out"),
        ):
            if marker in text:
                return reason
        return "connection error"
    return type(exc).__name__


class AddYumRepoByUrlPlugin(PreBuildPlugin):
    """Fetch yum repo files over HTTP(S) for the ``inject_yum_repo`` plugin, which
    runs after this one and makes them available in ``/etc/yum.repos.d`` while the
    Dockerfile's ``RUN`` instructions run.

    Each URL must answer with a yum repo file: an INI file with at least one section
    that has a ``baseurl``, ``metalink`` or ``mirrorlist``. Anything else (an error
    status, an HTML page, an unreachable host) fails the build with a message that
    names the URL (credentials and query string redacted). Timeouts, resets and 5xx
    answers are retried with the build's retry policy.

    The file is named after the URL's last path component (``.repo`` appended when
    missing; characters other than letters, digits, ``.``, ``_``, ``-`` replaced by
    ``_``); when two URLs give the same name, the later gets a short hash of its URL
    before the suffix (``name-1a2b3.repo``). With ``inject_proxy``, every section of
    every file gets ``proxy=<inject_proxy>`` (replacing a proxy it had).

    Result: a list of :class:`~atomic_reactor._repofiles.RepoFile` (file name, redacted
    URL, repo ids, size, whether a proxy was injected); the content is kept for
    ``inject_yum_repo`` but left out of the JSON results.
    """

    key = "add_yum_repo_by_url"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow, repourls: list[str],
                 inject_proxy: str | None = None) -> None:
        """
        :param repourls: URLs (http or https) of the yum repo files to fetch
        :param inject_proxy: proxy URL to set as ``proxy=`` in every repo section
        """
        super().__init__(tasker, workflow)
        for index, url in enumerate(repourls):
            problem = self._url_problem(url)
            if problem:
                raise PluginConfigError(
                    f"plugin {self.key}: argument repourls[{index}] ({display_url(url)}) "
                    f"{problem}", plugin=self.key, argument="repourls")
        if inject_proxy is not None and (not inject_proxy.strip()
                                         or any(c.isspace() for c in inject_proxy)):
            raise PluginConfigError(
                f"plugin {self.key}: argument inject_proxy must be a proxy URL without "
                "white space", plugin=self.key, argument="inject_proxy")
        self.repourls = list(dict.fromkeys(repourls))  # each URL once
        self.inject_proxy = inject_proxy or None
        retry = getattr(tasker, "retry", None)
        self.retry: RetryPolicy = retry if isinstance(retry, RetryPolicy) else RetryPolicy()

    @staticmethod
    def _url_problem(url: str) -> str | None:
        try:
            parts = urlsplit(url)
        except ValueError:
            return "is not a valid URL"
        if parts.scheme.lower() not in ("http", "https"):
            return "must be an http:// or https:// URL"
        if not parts.hostname:
            return "has no host"
        if any(c.isspace() for c in url):
            return "contains white space"
        return None

    # -- fetching --------------------------------------------------------------------
    def _get(self, session: requests.Session, url: str) -> bytes:
        shown = display_url(url)
        try:
            response = session.get(url, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), stream=True)
        except requests.RequestException as exc:
            raise RepoFetchError(f"cannot fetch repo file {shown}: {_reason(exc)}") from None
        with response:
            status = response.status_code
            if status >= 400:
                what = f"HTTP status {status} {response.reason or ''}".rstrip()
                if status >= 500:
                    # "status code 50x" marks it transient for the retry policy
                    what = f"HTTP status code {status} {response.reason or ''}".rstrip()
                elif status == 429:
                    what = "HTTP status 429 too many requests"
                raise RepoFetchError(f"cannot fetch repo file {shown}: the server answered "
                                     f"{what}")
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > MAX_REPO_FILE_BYTES:
                        raise RepoFetchError(
                            f"repo file {shown} is larger than {MAX_REPO_FILE_BYTES} bytes; "
                            "it is not a yum repo file")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise RepoFetchError(
                    f"cannot fetch repo file {shown}: {_reason(exc)} while reading") from None
        return b"".join(chunks)

    def fetch(self, session: requests.Session, url: str) -> str:
        """The text of the repo file at ``url``, checked to be a repo file."""
        shown = display_url(url)
        data = self.retry.call(f"fetching {shown}", lambda: self._get(session, url))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RepoFetchError(f"{shown} is not a yum repo file: it is not UTF-8 text") \
                from None
        if "\0" in text:
            raise RepoFetchError(f"{shown} is not a yum repo file: it is binary data")
        return text

    def run(self) -> list[RepoFile]:
        if not self.repourls:
            self.log.info("no repo URLs given; nothing to fetch")
            return []
        repos: list[RepoFile] = []
        with requests.Session() as session:
            for url in self.repourls:
                shown = display_url(url)
                text = self.fetch(session, url)
                try:
                    sections = repo_sections(text)
                except ValueError as exc:
                    raise RepoFetchError(f"{shown} is not a yum repo file: {exc}") from None
                if self.inject_proxy:
                    text = set_proxy(text, self.inject_proxy)
                filename = repo_filename(url, [repo.filename for repo in repos])
                self.log.info("fetched %s as %s (repos: %s)", shown, filename,
                              ", ".join(sections))
                repos.append(RepoFile(filename=filename, url=shown, sections=sections,
                                      size=len(text.encode("utf-8")),
                                      proxy_injected=self.inject_proxy is not None,
                                      content=text))
        return repos
