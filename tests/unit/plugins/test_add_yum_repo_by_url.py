"""add_yum_repo_by_url against a real HTTP server on 127.0.0.1 (no container engine)."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._repofiles import RepoFile, display_url, repo_filename, set_proxy
from atomic_reactor._results import jsonable
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins import add_yum_repo_by_url as module
from atomic_reactor.plugins.add_yum_repo_by_url import AddYumRepoByUrlPlugin
from tests.support.fake_engine import fake_tasker
from tests.support.yum_repo_server import Response, repo_file, serve_repos

KEY = "add_yum_repo_by_url"


def _plugin(repourls: list[str], attempts: int = 3, **kwargs: Any) -> AddYumRepoByUrlPlugin:
    tasker = fake_tasker(retry=RetryPolicy(attempts=attempts, delay=0, sleep=lambda _s: None))
    return AddYumRepoByUrlPlugin(tasker, cast("DockerBuildWorkflow", SimpleNamespace()),
                                 repourls=repourls, **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fetches_repo_files_in_order() -> None:
    routes = {"/x/a.repo": Response(repo_file("a", marker="A").encode()),
              "/y/b.repo": Response(repo_file("b", marker="B").encode())}
    with serve_repos(routes) as server:
        repos = _plugin([server.url("/x/a.repo"), server.url("/y/b.repo")]).run()

    assert [r.filename for r in repos] == ["a.repo", "b.repo"]
    assert [r.sections for r in repos] == [("a",), ("b",)]
    assert "# A\n[a]" in repos[0].content and "# B\n[b]" in repos[1].content
    assert repos[0].size == len(repos[0].content.encode())
    assert repos[0].path == "/etc/yum.repos.d/a.repo"
    assert not repos[0].proxy_injected


def test_same_basename_gets_a_hash_suffix_and_duplicates_are_fetched_once() -> None:
    body = repo_file("r").encode()
    with serve_repos({"/1/r.repo": Response(body), "/2/r.repo": Response(body)}) as server:
        first, second = server.url("/1/r.repo"), server.url("/2/r.repo")
        repos = _plugin([first, second, first]).run()
        requested = [path for path, _ in server.requests]

    names = [r.filename for r in repos]
    assert names[0] == "r.repo"
    assert names[1] != "r.repo" and names[1].startswith("r-") and names[1].endswith(".repo")
    assert len(names) == 2
    assert requested == ["/1/r.repo", "/2/r.repo"]


def test_name_without_repo_suffix_and_odd_characters() -> None:
    with serve_repos({"/my%20repo%241": Response(repo_file("r").encode())}) as server:
        repos = _plugin([server.url("/my%20repo%241")]).run()
    assert repos[0].filename == "my_repo_1.repo"


def test_transient_errors_are_retried() -> None:
    routes = {"/r.repo": Response(repo_file("r").encode(), fail_first=2)}
    with serve_repos(routes) as server:
        repos = _plugin([server.url("/r.repo")], attempts=3).run()
        assert len(server.requests) == 3
    assert repos[0].sections == ("r",)


def test_persistent_5xx_fails_after_the_attempts() -> None:
    routes = {"/r.repo": Response(repo_file("r").encode(), fail_first=10)}
    with serve_repos(routes) as server:
        with pytest.raises(AtomicReactorError, match="HTTP status code 503") as info:
            _plugin([server.url("/r.repo")], attempts=2).run()
        assert len(server.requests) == 2
    assert f"http://127.0.0.1:{server.port}/r.repo" in str(info.value)


def test_timeouts_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "READ_TIMEOUT", 0.2)
    with serve_repos({"/slow.repo": Response(repo_file("r").encode(), delay=1.0)}) as server:
        with pytest.raises(AtomicReactorError, match="timed out"):
            _plugin([server.url("/slow.repo")], attempts=2).run()
        assert len(server.requests) == 2


def test_404_is_not_retried_and_the_url_is_redacted() -> None:
    with serve_repos({}) as server:
        url = server.url("/nope.repo?token=abc123", userinfo="joe:pa55word")
        with pytest.raises(AtomicReactorError) as info:
            _plugin([url]).run()
        assert len(server.requests) == 1
    message = str(info.value)
    assert "HTTP status 404" in message
    assert f"http://***@127.0.0.1:{server.port}/nope.repo?***" in message
    assert "pa55word" not in message and "abc123" not in message


def test_credentials_in_the_url_are_used_but_not_recorded() -> None:
    with serve_repos({"/r.repo": Response(repo_file("r").encode())}) as server:
        repos = _plugin([server.url("/r.repo", userinfo="joe:pa55word")]).run()
        auth = server.requests[0][1]
    assert auth is not None and auth.startswith("Basic ")
    assert repos[0].url == f"http://***@127.0.0.1:{server.port}/r.repo"
    assert "pa55word" not in str(jsonable(repos))


def test_unreachable_host_is_a_clear_error() -> None:
    port = _free_port()
    with pytest.raises(AtomicReactorError, match="connection refused") as info:
        _plugin([f"http://127.0.0.1:{port}/r.repo"]).run()
    assert f"127.0.0.1:{port}/r.repo" in str(info.value)


@pytest.mark.parametrize(("body", "reason"), [
    (b"<html><body>login</body></html>", "does not start with a [section] header"),
    (b"[main]\nname=x\nenabled=1\n", "no section has a baseurl, metalink or mirrorlist"),
    (b"", "defines no [repository] section"),
    (b"[a]\nbaseurl=x\n\xff\xfe", "not UTF-8"),
    (b"[a]\nbaseurl=x\n\0\0", "binary"),
    (b"[a\nbaseurl=x\n", "does not start with a [section] header"),
])
def test_not_a_repo_file(body: bytes, reason: str) -> None:
    with serve_repos({"/r.repo": Response(body)}) as server, \
            pytest.raises(AtomicReactorError) as info:
        _plugin([server.url("/r.repo")]).run()
    assert "is not a yum repo file" in str(info.value)
    assert reason in str(info.value)


def test_metalink_or_mirrorlist_is_enough() -> None:
    body = b"[m]\nmetalink=https://x/metalink\n[l]\nmirrorlist=https://x/list\n"
    with serve_repos({"/r.repo": Response(body)}) as server:
        repos = _plugin([server.url("/r.repo")]).run()
    assert repos[0].sections == ("m", "l")


def test_too_large_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "MAX_REPO_FILE_BYTES", 100)
    body = (repo_file("r") + "#" * 200).encode()
    with serve_repos({"/r.repo": Response(body)}) as server, \
            pytest.raises(AtomicReactorError, match="larger than 100 bytes"):
        _plugin([server.url("/r.repo")]).run()


def test_inject_proxy_replaces_the_proxy_of_every_section() -> None:
    body = (b"# comment kept\n[a]\nbaseurl=http://a\nproxy=http://old:1\n"
            b"[b]\nbaseurl=http://b\n")
    with serve_repos({"/r.repo": Response(body)}) as server:
        repos = _plugin([server.url("/r.repo")], inject_proxy="http://proxy:3128").run()
    assert repos[0].proxy_injected
    assert repos[0].content == ("# comment kept\n[a]\nproxy=http://proxy:3128\n"
                                "baseurl=http://a\n[b]\nproxy=http://proxy:3128\n"
                                "baseurl=http://b\n")


def test_no_urls_fetches_nothing() -> None:
    assert _plugin([]).run() == []


def test_result_json_has_no_content() -> None:
    repo = RepoFile(filename="a.repo", url="http://x/a.repo", sections=("a",), size=3,
                    content="SECRET")
    assert jsonable([repo]) == [{"filename": "a.repo", "url": "http://x/a.repo",
                                 "sections": ["a"], "size": 3, "proxy_injected": False}]


@pytest.mark.parametrize("url", ["ftp://host/r.repo", "file:///etc/r.repo", "http:///r.repo",
                                 "not a url", "https://host/with space.repo"])
def test_bad_urls_are_refused_up_front(url: str) -> None:
    with pytest.raises(PluginConfigError) as info:
        _plugin(["http://ok/r.repo", url])
    assert info.value.argument == "repourls"
    assert "repourls[1]" in str(info.value)


def test_credentials_in_a_bad_url_are_not_shown() -> None:
    with pytest.raises(PluginConfigError) as info:
        _plugin(["ftp://joe:pa55word@host/r.repo"])
    assert "pa55word" not in str(info.value)


@pytest.mark.parametrize("proxy", ["", "  ", "http://proxy:1\nbaseurl=http://evil"])
def test_bad_proxy_is_refused(proxy: str) -> None:
    with pytest.raises(PluginConfigError) as info:
        _plugin(["http://ok/r.repo"], inject_proxy=proxy)
    assert info.value.argument == "inject_proxy"


@pytest.mark.parametrize("args", [{}, {"repourls": "http://x/r.repo"}, {"repourls": [1]},
                                  {"repourls": [], "inject_proxy": 5},
                                  {"repourls": [], "proxy": "x"}])
def test_schema_rejects_bad_arguments(args: dict[str, Any]) -> None:
    with pytest.raises(PluginConfigError) as info:
        validate_plugin_args(KEY, AddYumRepoByUrlPlugin, args)
    assert info.value.plugin == KEY


def test_schema_accepts_the_documented_arguments() -> None:
    validate_plugin_args(KEY, AddYumRepoByUrlPlugin,
                         {"repourls": ["http://x/r.repo"], "inject_proxy": None})
    validate_plugin_args(KEY, AddYumRepoByUrlPlugin,
                         {"repourls": [], "inject_proxy": "http://proxy:3128"})


@pytest.mark.parametrize(("url", "shown"), [
    ("https://u:p@host:8443/x.repo?token=1#frag", "https://***@host:8443/x.repo?***"),
    ("http://host/x.repo", "http://host/x.repo"),
    ("http://user@host/x.repo", "http://***@host/x.repo"),
])
def test_display_url(url: str, shown: str) -> None:
    assert display_url(url) == shown


@pytest.mark.parametrize(("url", "taken", "name"), [
    ("http://h/a/b.repo", [], "b.repo"),
    ("http://h/a/b.repo?x=1", [], "b.repo"),
    ("http://h/a/b", [], "b.repo"),
    ("http://h/.hidden", [], "hidden.repo"),
    ("http://h/", [], "repo.repo"),
    ("http://h/a/../x*y.repo", [], "x_y.repo"),
])
def test_repo_filename(url: str, taken: list[str], name: str) -> None:
    assert repo_filename(url, taken) == name


def test_repo_filename_clash_is_stable_and_distinct() -> None:
    first = repo_filename("http://h/1/b.repo", ["b.repo"])
    assert first == repo_filename("http://h/1/b.repo", ["b.repo"])
    assert first != repo_filename("http://h/2/b.repo", ["b.repo"])
    assert repo_filename("http://h/1/b.repo", ["b.repo", first]) not in ("b.repo", first)


def test_set_proxy_drops_continuation_lines_of_the_old_proxy() -> None:
    text = "[a]\nproxy = http://old\n  continued\nbaseurl=http://a\n"
    assert set_proxy(text, "http://new") == "[a]\nproxy=http://new\nbaseurl=http://a\n"
