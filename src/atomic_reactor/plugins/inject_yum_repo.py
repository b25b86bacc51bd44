"""``inject_yum_repo``: make yum repo files available to the Dockerfile's ``RUN`` steps only."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor._files import write_text_atomic
from atomic_reactor._repofiles import (
    REPOS_DIR,
    DockerfileInstruction,
    RepoFile,
    dockerfile_instructions,
    edit_dockerfile,
    is_root_user,
    replace_lines,
    unique_name,
)
from atomic_reactor.errors import AtomicReactorError, DockerfileError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["CONTEXT_DIR", "InjectYumRepoPlugin", "InjectedYumRepos"]

#: directory in the build context the repo files are written to
CONTEXT_DIR = "atomic-reactor-repos"
SOURCE_PLUGIN = "add_yum_repo_by_url"


@dataclass(frozen=True)
class InjectedYumRepos:
    """What ``inject_yum_repo`` did (or why it did nothing)."""

    #: the repo files' paths in the image while ``RUN`` steps run
    files: tuple[str, ...] = ()
    #: indexes (0-based) of the Dockerfile stages that got them
    stages: tuple[int, ...] = ()
    #: directory in the build context holding the files
    context_dir: str | None = None
    skipped: bool = False
    reason: str | None = None
    #: ``wrap_commands``: how many RUN instructions were wrapped
    wrapped: int = 0


class InjectYumRepoPlugin(PreBuildPlugin):
    """Put yum repo files into ``/etc/yum.repos.d`` for the Dockerfile's ``RUN``
    instructions and take them out again, so the built image does not contain them.

    The repo files come from the ``add_yum_repo_by_url`` plugin's result (it must run
    before this one) and, as in atomic-reactor 1.6, from ``workflow.files`` entries
    under ``/etc/yum.repos.d/``. They are written to ``atomic-reactor-repos/`` in the
    build context (re-included in an existing ``.dockerignore``). Then, in every stage
    that has a ``RUN`` instruction:

    * ``COPY`` of the files into ``/etc/yum.repos.d/`` goes right before the first
      ``RUN`` (``COPY`` writes as root whatever the ``USER``);
    * ``RUN ["rm", "-f", <files>]`` goes after the stage's last instruction, wrapped
      in ``USER root`` … ``USER <user>`` when the stage ends as another user, where
      ``<user>`` is the stage's last ``USER`` line verbatim or else the user its base
      image (or base stage) runs as, so the image keeps the user the Dockerfile gave.

    Stages without ``RUN`` are left alone. ``/etc/yum.repos.d`` itself stays (empty if
    the base image had no such directory). A base image file with the same name as an
    injected repo file is overwritten and then removed, as in 1.6.

    With ``wrap_commands`` (1.6's other way), nothing is copied: every ``RUN``
    instruction becomes ``RUN <write the repo files> && (<its command>) && rm -f
    <the files>`` (an exec-form ``RUN`` is turned into the same command line, quoted),
    so the files exist only while each command runs; the stage's user must be able to
    write ``/etc/yum.repos.d`` (as in 1.6).

    Result: an :class:`InjectedYumRepos` (the files' paths in the image, the stages
    edited, the context directory or with ``wrap_commands`` the number of ``RUN``
    instructions wrapped), or one with ``skipped`` and ``reason`` when there were no
    repo files or no ``RUN`` instruction.
    """

    key = "inject_yum_repo"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 wrap_commands: bool = False) -> None:
        """
        :param wrap_commands: write and remove the repo files around every ``RUN``
            command instead of copying them in once per stage (1.6)
        """
        super().__init__(tasker, workflow)
        self.wrap_commands = wrap_commands

    # -- collecting ------------------------------------------------------------------
    def repo_files(self) -> list[RepoFile]:
        """The repo files to inject, each with a unique file name."""
        found: list[RepoFile] = []
        result = self.workflow.plugin_result(SOURCE_PLUGIN)
        if isinstance(result, BaseException):
            self.log.warning("%s failed; its repo files are not injected", SOURCE_PLUGIN)
        elif isinstance(result, list):
            found.extend(item for item in result if isinstance(item, RepoFile))
        files = getattr(self.workflow, "files", None) or {}
        for path, content in files.items():
            if not str(path).startswith(REPOS_DIR + "/"):
                continue
            text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
            name = os.path.basename(str(path))
            found.append(RepoFile(filename=name, url=None, sections=(),
                                  size=len(text.encode("utf-8")), content=text))
        unique: list[RepoFile] = []
        for repo in found:
            name = unique_name(repo.filename, [r.filename for r in unique],
                               repo.url or repo.content)
            if name != repo.filename:
                self.log.info("repo file name %s is taken; using %s", repo.filename, name)
            unique.append(dataclasses.replace(repo, filename=name))
        return unique

    # -- users -------------------------------------------------------------------------
    def _image_user(self, image: str) -> str:
        try:
            info = self.tasker.image_info(image)
        except AtomicReactorError as exc:
            raise AtomicReactorError(
                f"{self.key}: cannot tell which user base image {image} runs as ({exc}); "
                "it must be available locally (run pull_base_image first)") from None
        return info.user

    def _end_users(self, instructions: list[DockerfileInstruction]
                   ) -> Callable[[int], str]:
        """A function giving the user each stage ends as (USER value as written)."""
        stages = self.builder.refresh_stages()
        cache: dict[int, str] = {}

        def end_user(index: int) -> str:
            if index in cache:
                return cache[index]
            users = [i.value for i in instructions if i.stage == index and i.instruction == "USER"]
            if users:
                cache[index] = users[-1]
                return users[-1]
            if index >= len(stages):
                raise DockerfileError(f"{self.key}: Dockerfile stage {index} not understood")
            ref = stages[index].stage_ref
            if ref is not None:
                user = end_user(ref)
            elif stages[index].image == "scratch":
                user = ""
            else:
                user = self._image_user(stages[index].image)
            cache[index] = user
            return user

        return end_user

    # -- the build context ---------------------------------------------------------
    def _context_dir(self, df_dir: str) -> str:
        name = CONTEXT_DIR
        while os.path.lexists(os.path.join(df_dir, name)):
            name = f"{CONTEXT_DIR}-{secrets.token_hex(4)}"
        return name

    def _write_files(self, df_dir: str, context_dir: str, repos: list[RepoFile]) -> None:
        directory = os.path.join(df_dir, context_dir)
        os.makedirs(directory, mode=0o755)
        for repo in repos:
            write_text_atomic(os.path.join(directory, repo.filename), repo.content, mode=0o644)
            self.log.debug("wrote %s", os.path.join(context_dir, repo.filename))
        _dfedit.ensure_in_context(
            df_dir, [context_dir, *(f"{context_dir}/{repo.filename}" for repo in repos)])

    # -- wrap_commands -------------------------------------------------------------------
    @staticmethod
    def _command(value: str) -> str:
        """A RUN instruction's command as shell text (exec form quoted word by word)."""
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                words = json.loads(stripped)
            except ValueError:
                words = None
            if isinstance(words, list) and words and all(isinstance(w, str) for w in words):
                return shlex.join(words)
        return stripped

    def _wrap(self, text: str, instructions: list[DockerfileInstruction],
              repos: list[RepoFile], with_run: list[int]) -> InjectedYumRepos:
        create = [f"mkdir -p {REPOS_DIR}"]
        for repo in repos:
            lines = repo.content.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            create.append("printf '%s\\n' " + " ".join(shlex.quote(line) for line in lines)
                          + f" > {shlex.quote(repo.path)}")
        remove = "rm -f " + " ".join(shlex.quote(repo.path) for repo in repos)
        replacements: dict[int, tuple[int, str]] = {}
        for item in instructions:
            if item.instruction != "RUN":
                continue
            command = self._command(item.value)
            if not command:
                raise DockerfileError(f"{self.key}: an empty RUN instruction "
                                      f"(line {item.startline + 1}) cannot be wrapped")
            line = f"RUN {' && '.join(create)} && ( {command} ) && {remove}"
            replacements[item.startline] = (item.endline, line)
        _dfedit.write(self.builder.df_path, replace_lines(text, replacements))
        paths = tuple(repo.path for repo in repos)
        self.log.info("wrapped %d RUN instruction(s) with %s", len(replacements),
                      ", ".join(paths))
        return InjectedYumRepos(files=paths, stages=tuple(with_run), wrapped=len(replacements))

    # -- running ---------------------------------------------------------------------
    def run(self) -> InjectedYumRepos:
        repos = self.repo_files()
        if not repos:
            reason = "no repo files to inject"
            self.log.info("%s; skipped", reason)
            return InjectedYumRepos(skipped=True, reason=reason)
        builder = self.builder
        text = _dfedit.read(builder.df_path)
        instructions = dockerfile_instructions(text)
        stage_count = max((i.stage for i in instructions), default=-1) + 1
        with_run = [index for index in range(stage_count)
                    if any(i.stage == index and i.instruction == "RUN" for i in instructions)]
        if not with_run:
            reason = "the Dockerfile has no RUN instruction"
            self.log.info("%s; skipped", reason)
            return InjectedYumRepos(skipped=True, reason=reason)

        if self.wrap_commands:
            return self._wrap(text, instructions, repos, with_run)
        context_dir = self._context_dir(builder.df_dir)
        paths = [repo.path for repo in repos]
        copy_line = "COPY " + json.dumps(
            [f"{context_dir}/{repo.filename}" for repo in repos] + [REPOS_DIR + "/"])
        remove_line = "RUN " + json.dumps(["rm", "-f", *paths])
        end_user = self._end_users(instructions)
        before: dict[int, list[str]] = {}
        after: dict[int, list[str]] = {}
        for index in with_run:
            stage = [i for i in instructions if i.stage == index]
            first_run = next(i for i in stage if i.instruction == "RUN")
            before.setdefault(first_run.startline, []).append(copy_line)
            user = end_user(index)
            cleanup = [remove_line]
            if not is_root_user(user):
                cleanup = ["USER root", remove_line, f"USER {user}"]
            after.setdefault(stage[-1].endline, []).extend(cleanup)

        self._write_files(builder.df_dir, context_dir, repos)
        _dfedit.write(builder.df_path, edit_dockerfile(text, before, after))
        self.log.info("injected %s into stage(s) %s", ", ".join(paths),
                      ", ".join(str(i) for i in with_run))
        return InjectedYumRepos(files=tuple(paths), stages=tuple(with_run),
                                context_dir=context_dir)
