"""inject_yum_repo's Dockerfile and build-context edits (no container engine)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor._repofiles import RepoFile
from atomic_reactor.build import InsideBuilder
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.inject_yum_repo import InjectYumRepoPlugin
from atomic_reactor.source import Source, get_source_instance_for
from tests.support.fake_engine import FakeEngine, image_id_for

REPO_A = RepoFile(filename="a.repo", url="http://x/a.repo", sections=("a",), size=9,
                  content="[a]\nbaseurl=http://x\n")
REPO_B = RepoFile(filename="b.repo", url="http://x/b.repo", sections=("b",), size=9,
                  content="[b]\nbaseurl=http://y\n")


def _tasker(users: Mapping[str, str]) -> DockerTasker:
    """A real tasker over a fake engine holding one image per name, running as its user."""
    engine = FakeEngine()
    for name, user in users.items():
        engine.add_image(name, id=image_id_for(name), user=user)
    return DockerTasker(engine=engine)


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[list[Source]]:
    made: list[Source] = []
    yield made
    for source in made:
        source.cleanup()


def _plugin(tmp_path: Path, sources: list[Source], dockerfile: str,
            repos: Any = (REPO_A,), users: Mapping[str, str] | None = None,
            files: dict[str, Any] | None = None, extra: Mapping[str, str] | None = None
            ) -> InjectYumRepoPlugin:
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    for name, content in (extra or {}).items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(content)
    source = get_source_instance_for({"provider": "path", "uri": f"file://{src}"},
                                     tmpdir=tmp_path / "work")
    sources.append(source)
    tasker = _tasker(users or {"base:1": ""})
    builder = InsideBuilder(source, "built:1", tasker=tasker)
    result = list(repos) if isinstance(repos, tuple) else repos

    def plugin_result(key: str, default: Any = None) -> Any:
        return result if key == "add_yum_repo_by_url" else default

    workflow = SimpleNamespace(builder=builder, files=files or {}, plugin_result=plugin_result)
    return InjectYumRepoPlugin(tasker, cast("DockerBuildWorkflow", workflow))


def _dockerfile(plugin: InjectYumRepoPlugin) -> str:
    return Path(plugin.builder.df_path).read_text()


def test_single_stage_root(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1
        LABEL a=b
        RUN echo one
        RUN echo two \\
            three
        CMD ["sh"]
    """, repos=(REPO_A, REPO_B))
    result = plugin.run()

    assert result.files == ("/etc/yum.repos.d/a.repo", "/etc/yum.repos.d/b.repo")
    assert result.stages == (0,)
    assert result.context_dir == "atomic-reactor-repos"
    assert not result.skipped
    assert _dockerfile(plugin) == textwrap.dedent("""\
        FROM base:1
        LABEL a=b
        COPY ["atomic-reactor-repos/a.repo", "atomic-reactor-repos/b.repo", "/etc/yum.repos.d/"]
        RUN echo one
        RUN echo two \\
            three
        CMD ["sh"]
        RUN ["rm", "-f", "/etc/yum.repos.d/a.repo", "/etc/yum.repos.d/b.repo"]
    """)
    context = Path(plugin.builder.df_dir) / "atomic-reactor-repos"
    assert (context / "a.repo").read_text() == REPO_A.content
    assert (context / "b.repo").read_text() == REPO_B.content
    assert (context / "a.repo").stat().st_mode & 0o777 == 0o644


def test_user_in_dockerfile_is_restored_verbatim(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1
        USER app
        RUN echo one
        USER ${APP_USER}:wheel
    """)
    plugin.run()
    assert _dockerfile(plugin).splitlines()[-3:] == [
        "USER root", 'RUN ["rm", "-f", "/etc/yum.repos.d/a.repo"]', "USER ${APP_USER}:wheel"]


@pytest.mark.parametrize("user", ["", "root", "0", "0:0", "root:root"])
def test_root_needs_no_user_switch(tmp_path: Path, sources: list[Source], user: str) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n", users={"base:1": user})
    plugin.run()
    assert "USER" not in _dockerfile(plugin)


def test_user_of_the_base_image_is_restored(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n", users={"base:1": "1001:10"})
    plugin.run()
    assert _dockerfile(plugin).splitlines()[-3:] == [
        "USER root", 'RUN ["rm", "-f", "/etc/yum.repos.d/a.repo"]', "USER 1001:10"]


def test_unknown_base_image_user_is_an_error(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM other:2\nRUN true\n", users={})
    before = _dockerfile(plugin)
    with pytest.raises(AtomicReactorError, match="cannot tell which user base image other:2"):
        plugin.run()
    assert _dockerfile(plugin) == before  # nothing half-done
    assert not (Path(plugin.builder.df_dir) / "atomic-reactor-repos").exists()


def test_multi_stage(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1 AS builder
        USER 1001
        RUN make
        FROM scratch AS files
        COPY x /x
        FROM builder
        RUN make install
        FROM base:1
        COPY --from=builder /out /out
    """, users={"base:1": ""})
    result = plugin.run()

    assert result.stages == (0, 2)
    copy = 'COPY ["atomic-reactor-repos/a.repo", "/etc/yum.repos.d/"]'
    remove = 'RUN ["rm", "-f", "/etc/yum.repos.d/a.repo"]'
    assert _dockerfile(plugin) == textwrap.dedent(f"""\
        FROM base:1 AS builder
        USER 1001
        {copy}
        RUN make
        USER root
        {remove}
        USER 1001
        FROM scratch AS files
        COPY x /x
        FROM builder
        {copy}
        RUN make install
        USER root
        {remove}
        USER 1001
        FROM base:1
        COPY --from=builder /out /out
    """)


def test_no_repos_is_a_recorded_skip(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n", repos=None)
    before = _dockerfile(plugin)
    result = plugin.run()
    assert result.skipped and result.reason == "no repo files to inject"
    assert _dockerfile(plugin) == before


def test_failed_fetch_plugin_is_a_recorded_skip(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n",
                     repos=AtomicReactorError("boom"))
    assert plugin.run().skipped


def test_no_run_is_a_recorded_skip(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nCOPY a /a\n")
    before = _dockerfile(plugin)
    result = plugin.run()
    assert result.skipped and "no RUN" in (result.reason or "")
    assert _dockerfile(plugin) == before


def test_workflow_files_are_injected_too(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n",
                     files={"/etc/yum.repos.d/a.repo": b"[x]\nbaseurl=http://z\n",
                            "/etc/other/file": "ignored"})
    result = plugin.run()
    assert result.files[0] == "/etc/yum.repos.d/a.repo"
    clash = result.files[1].rsplit("/", 1)[1]
    assert clash.startswith("a-") and clash.endswith(".repo")
    context = Path(plugin.builder.df_dir) / "atomic-reactor-repos"
    assert (context / clash).read_text() == "[x]\nbaseurl=http://z\n"
    assert sorted(p.name for p in context.iterdir()) == sorted(["a.repo", clash])


def test_dockerignore_gets_exceptions(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n",
                     extra={".dockerignore": "*"})
    plugin.run()
    lines = (Path(plugin.builder.df_dir) / ".dockerignore").read_text().splitlines()
    assert lines[0] == "*"
    assert "!atomic-reactor-repos" in lines
    assert "!atomic-reactor-repos/a.repo" in lines


def test_existing_context_dir_is_not_touched(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true\n",
                     extra={"atomic-reactor-repos/mine": "mine"})
    result = plugin.run()
    assert result.context_dir and result.context_dir.startswith("atomic-reactor-repos-")
    df_dir = Path(plugin.builder.df_dir)
    assert sorted(p.name for p in (df_dir / "atomic-reactor-repos").iterdir()) == ["mine"]
    assert (df_dir / result.context_dir / "a.repo").is_file()
    assert f'"{result.context_dir}/a.repo"' in _dockerfile(plugin)


def test_dockerfile_without_final_newline(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, "FROM base:1\nRUN true")
    plugin.run()
    assert _dockerfile(plugin).endswith('\nRUN true\nRUN ["rm", "-f", "/etc/yum.repos.d/a.repo"]\n')


def test_takes_no_arguments() -> None:
    validate_plugin_args("inject_yum_repo", InjectYumRepoPlugin, {})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("inject_yum_repo", InjectYumRepoPlugin, {"repos": {}})


def test_wrap_commands_wraps_every_run_as_in_1_6(tmp_path: Path, sources: list[Source]) -> None:
    plugin = _plugin(tmp_path, sources, """
        FROM base:1
        RUN echo one
        RUN echo two \\
            three
        RUN ["sh", "-c", "echo 'four'"]
        CMD ["sh"]
    """, repos=(REPO_A,))
    plugin.wrap_commands = True
    result = plugin.run()
    assert result.wrapped == 3
    assert result.context_dir is None
    create = ("mkdir -p /etc/yum.repos.d && printf '%s\\n' '[a]' baseurl=http://x "
              "> /etc/yum.repos.d/a.repo")
    remove = "rm -f /etc/yum.repos.d/a.repo"
    assert _dockerfile(plugin) == textwrap.dedent(f"""\
        FROM base:1
        RUN {create} && ( echo one ) && {remove}
        RUN {create} && ( echo two     three ) && {remove}
        RUN {create} && ( sh -c 'echo '"'"'four'"'"'' ) && {remove}
        CMD ["sh"]
    """)
    assert not (Path(plugin.builder.df_dir) / "atomic-reactor-repos").exists()
    validate_plugin_args("inject_yum_repo", InjectYumRepoPlugin, {"wrap_commands": True})
    with pytest.raises(PluginConfigError, match="wrap_commands"):
        validate_plugin_args("inject_yum_repo", InjectYumRepoPlugin, {"wrap_commands": "yes"})
