"""inject_yum_repo (with add_yum_repo_by_url) through the real pipeline and engine."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor.api import BuildResults, build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry
from tests.support.images import ImageFiles, build_and_push, image_files
from tests.support.yum_repo_server import RepoServer, Response, repo_file, serve_repos


@pytest.fixture
def repo_server() -> Iterator[RepoServer]:
    routes = {
        "/a/test.repo": Response(repo_file("test-a", marker="MARKER-A").encode()),
        "/b/test.repo": Response(repo_file("test-b", marker="MARKER-B").encode()),
        "/other.repo": Response(repo_file("other", marker="MARKER-OTHER").encode()),
    }
    with serve_repos(routes) as server:
        yield server


def _build(base_image: BaseImage, context: Path, repourls: list[str], **kwargs: Any
           ) -> BuildResults:
    return build_image_here(
        source=path_source(context), image=f"{unique('art-yum')}:1",
        parent_registry=base_image.registry.address,
        prebuild_plugins=[
            {"name": "add_yum_repo_by_url", "args": {"repourls": repourls}},
            {"name": "inject_yum_repo"},
        ], **kwargs)


def _read(tasker: DockerTasker, image: str, path: str) -> bytes | None:
    """The file ``path`` of ``image`` (None when it does not exist)."""
    return _files(tasker, image).read(path)


def _entries(tasker: DockerTasker, image: str, directory: str) -> list[str] | None:
    """Names in ``directory`` of ``image`` (None when the directory does not exist)."""
    return _files(tasker, image).entries(directory)


_SEEN: dict[str, ImageFiles] = {}


def _files(tasker: DockerTasker, image: str) -> ImageFiles:
    """The files of ``image`` (an image id: the same content whenever it exists)."""
    if image not in _SEEN:
        _SEEN.clear()
        _SEEN[image] = image_files(tasker, image)
    return _SEEN[image]


def _push_parent_with_user(tasker: DockerTasker, base_image: BaseImage,
                           registry: Registry, user: str) -> str:
    """Push an image ``FROM`` the base with ``USER user``; return its ``repo:tag``."""
    repo = f"{unique('art-yum-parent')}:1"
    build_and_push(tasker, f"FROM {base_image.local}\nUSER {user}\n",
                   f"{registry.address}/{repo}")
    return repo


def test_repos_are_there_during_run_and_gone_after(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        RUN mkdir /out && cat /etc/yum.repos.d/*.repo > /out/during-run.txt \\
            && ls /etc/yum.repos.d > /out/listing.txt && chmod -R a+rwx /out
        USER 1001
        RUN id -u > /out/uid.txt
        CMD ["sh"]
    """)
    results = _build(base_image, context,
                     [repo_server.url("/a/test.repo"), repo_server.url("/b/test.repo")])

    assert not results.is_failed(), results.error
    fetched = results.plugin_results["prebuild"]["add_yum_repo_by_url"]
    names = [repo["filename"] for repo in fetched]
    assert names[0] == "test.repo"
    assert names[1].startswith("test-") and names[1].endswith(".repo")
    assert all("content" not in repo for repo in fetched)  # kept out of the JSON results
    injected = results.plugin_results["prebuild"]["inject_yum_repo"]
    assert injected["files"] == [f"/etc/yum.repos.d/{name}" for name in names]
    assert injected["stages"] == [0]

    image = results.image_id
    assert image
    during = _read(tasker, image, "/out/during-run.txt")
    assert during is not None
    assert b"MARKER-A" in during and b"MARKER-B" in during
    assert (_read(tasker, image, "/out/listing.txt") or b"").split() == \
        [name.encode() for name in sorted(names)]
    # the Dockerfile's user ran the RUN after USER, and is the image's user
    assert _read(tasker, image, "/out/uid.txt") == b"1001\n"
    assert tasker.image_info(image).user == "1001"
    # the repo files are gone from the image
    assert _entries(tasker, image, "/etc/yum.repos.d") == []
    for name in names:
        assert _read(tasker, image, f"/etc/yum.repos.d/{name}") is None
    assert results.dockerfile is not None
    tail = results.dockerfile.rstrip().splitlines()[-3:]
    assert tail[0] == "USER root" and tail[1].startswith('RUN ["rm", "-f"') and \
        tail[2] == "USER 1001"


def test_user_inherited_from_stage_is_kept(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo} AS base
        USER 1001
        FROM base
        RUN id -u > /tmp/uid.txt && cat /etc/yum.repos.d/other.repo > /tmp/during-run.txt
    """)
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    image = results.image_id
    assert image
    assert _read(tasker, image, "/tmp/uid.txt") == b"1001\n"
    assert b"MARKER-OTHER" in (_read(tasker, image, "/tmp/during-run.txt") or b"")
    # removing needed root (the directory belongs to root): the build switched and back
    assert _read(tasker, image, "/etc/yum.repos.d/other.repo") is None
    assert tasker.image_info(image).user == "1001"


def test_user_inherited_from_base_image_is_kept(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    parent = _push_parent_with_user(tasker, base_image, base_image.registry, "1002")
    context = write_context(workdir / "src", f"""
        FROM {parent}
        RUN id -u > /tmp/uid.txt && cat /etc/yum.repos.d/other.repo > /tmp/during-run.txt
    """)
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    image = results.image_id
    assert image
    assert _read(tasker, image, "/tmp/uid.txt") == b"1002\n"
    assert b"MARKER-OTHER" in (_read(tasker, image, "/tmp/during-run.txt") or b"")
    assert _read(tasker, image, "/etc/yum.repos.d/other.repo") is None
    assert tasker.image_info(image).user == "1002"


def test_every_stage_with_run_gets_the_repos(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo} AS builder
        RUN cat /etc/yum.repos.d/other.repo > /built.txt
        FROM {base_image.repo} AS unused
        COPY Dockerfile /copied
        FROM {base_image.repo}
        COPY --from=builder /built.txt /built.txt
        COPY --from=builder /etc /builder-etc
        RUN cat /etc/yum.repos.d/other.repo > /final.txt
    """)
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    assert results.plugin_results["prebuild"]["inject_yum_repo"]["stages"] == [0, 2]
    image = results.image_id
    assert image
    assert b"MARKER-OTHER" in (_read(tasker, image, "/built.txt") or b"")
    assert b"MARKER-OTHER" in (_read(tasker, image, "/final.txt") or b"")
    # removed at the end of the builder stage too: a COPY --from does not carry them
    assert _entries(tasker, image, "/builder-etc/yum.repos.d") == []
    assert _read(tasker, image, "/etc/yum.repos.d/other.repo") is None


def test_dockerignore_does_not_hide_the_repos(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        RUN cat /etc/yum.repos.d/other.repo > /during-run.txt
    """, files={".dockerignore": "*\n!Dockerfile\n"})
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    image = results.image_id
    assert image
    assert b"MARKER-OTHER" in (_read(tasker, image, "/during-run.txt") or b"")


def test_no_run_instruction_is_a_recorded_skip(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        LABEL a=b
    """)
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    injected = results.plugin_results["prebuild"]["inject_yum_repo"]
    assert injected["skipped"] is True
    assert "RUN" in injected["reason"]
    assert results.image_id
    assert _entries(tasker, results.image_id, "/etc/yum.repos.d") is None


@pytest.mark.parametrize(("path", "expected"), [
    ("/missing.repo", "HTTP status 404"),
    ("/page.html", "is not a yum repo file"),
])
def test_bad_url_fails_the_build_naming_it(
        base_image: BaseImage, workdir: Path, path: str, expected: str) -> None:
    routes = {"/page.html": Response(b"<html><body>hello</body></html>",
                                     content_type="text/html")}
    with serve_repos(routes) as server:
        url = server.url(path, userinfo="joe:s3cret-pw")
        context = write_context(workdir / "src", f"""
            FROM {base_image.repo}
            RUN true
        """)
        results = _build(base_image, context, [url])

    assert results.is_failed()
    assert results.image_id is None  # nothing was built
    error = results.plugins_errors["add_yum_repo_by_url"]
    assert expected in error
    assert f"http://***@127.0.0.1:{server.port}{path}" in error
    assert "s3cret-pw" not in results.to_json()
    assert results.error is not None and results.error["plugin"] == "add_yum_repo_by_url"


def test_inject_proxy_sets_proxy_in_every_section(
        tasker: DockerTasker, base_image: BaseImage, workdir: Path) -> None:
    two_sections = repo_file("one", marker="M1") + "\n" + repo_file("two") + "proxy=http://old\n"
    with serve_repos({"/two.repo": Response(two_sections.encode())}) as server:
        context = write_context(workdir / "src", f"""
            FROM {base_image.repo}
            RUN cat /etc/yum.repos.d/two.repo > /during-run.txt
        """)
        results = build_image_here(
            source=path_source(context), image=f"{unique('art-yum')}:1",
            parent_registry=base_image.registry.address,
            prebuild_plugins=[
                {"name": "add_yum_repo_by_url",
                 "args": {"repourls": [server.url("/two.repo")],
                          "inject_proxy": "http://proxy.example:3128"}},
                {"name": "inject_yum_repo"},
            ])

    assert not results.is_failed(), results.error
    assert results.image_id
    text = (_read(tasker, results.image_id, "/during-run.txt") or b"").decode()
    assert text.count("proxy=http://proxy.example:3128") == 2
    assert "http://old" not in text
    assert "M1" in text  # the rest of the file is kept as it was
    fetched = results.plugin_results["prebuild"]["add_yum_repo_by_url"]
    assert fetched[0]["proxy_injected"] is True
    assert fetched[0]["sections"] == ["one", "two"]


def test_build_context_dir_name_is_not_reused(
        tasker: DockerTasker, base_image: BaseImage, repo_server: RepoServer,
        workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        COPY atomic-reactor-repos/mine.txt /mine.txt
        RUN cat /etc/yum.repos.d/other.repo > /during-run.txt
    """, files={"atomic-reactor-repos/mine.txt": "the user's own file\n"})
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    injected = results.plugin_results["prebuild"]["inject_yum_repo"]
    assert injected["context_dir"] != "atomic-reactor-repos"
    assert results.image_id
    assert _read(tasker, results.image_id, "/mine.txt") == b"the user's own file\n"
    assert b"MARKER-OTHER" in (_read(tasker, results.image_id, "/during-run.txt") or b"")


def test_dockerfile_is_edited_as_documented(base_image: BaseImage, repo_server: RepoServer,
                                            workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        ENV A=1
        RUN echo first
        RUN echo second
        CMD ["sh"]
    """)
    results = _build(base_image, context, [repo_server.url("/other.repo")])

    assert not results.is_failed(), results.error
    assert results.dockerfile is not None
    expected = textwrap.dedent(f"""\
        FROM {base_image.repo}
        ENV A=1
        COPY ["atomic-reactor-repos/other.repo", "/etc/yum.repos.d/"]
        RUN echo first
        RUN echo second
        CMD ["sh"]
        RUN ["rm", "-f", "/etc/yum.repos.d/other.repo"]
    """)
    assert results.dockerfile == expected


def test_wrap_commands_as_in_1_6(tasker: DockerTasker, base_image: BaseImage,
                                 repo_server: RepoServer, workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        RUN mkdir /out && cat /etc/yum.repos.d/*.repo > /out/during-run.txt \\
            && echo "it's $HOME" > /out/quoted.txt
        RUN ["sh", "-c", "ls /etc/yum.repos.d > /out/listing.txt"]
        CMD ["sh"]
    """)
    results = build_image_here(
        source=path_source(context), image=f"{unique('art-yum')}:1",
        parent_registry=base_image.registry.address,
        prebuild_plugins=[
            {"name": "add_yum_repo_by_url", "args": {"repourls": [
                repo_server.url("/a/test.repo")]}},
            {"name": "inject_yum_repo", "args": {"wrap_commands": True}},
        ])
    assert not results.is_failed(), results.error
    injected = results.plugin_results["prebuild"]["inject_yum_repo"]
    assert injected["wrapped"] == 2
    assert injected["context_dir"] is None  # nothing copied into the build context
    image_id = str(results.image_id)
    during = _read(tasker, image_id, "/out/during-run.txt")
    assert during is not None and b"MARKER-A" in during
    assert _read(tasker, image_id, "/out/quoted.txt") == b"it's /root\n"
    listing = _read(tasker, image_id, "/out/listing.txt")
    assert listing is not None and b".repo" in listing  # the exec-form RUN saw it too
    assert _entries(tasker, image_id, "/etc/yum.repos.d") == []  # gone after each RUN
    assert results.dockerfile is not None and "COPY" not in results.dockerfile
