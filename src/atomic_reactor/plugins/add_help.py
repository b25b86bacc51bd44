"""``add_help``: turn the source's help.md into the image's man page /help.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["AddHelpPlugin", "AddedHelp"]

#: the converter and how long it may take
GO_MD2MAN = "go-md2man"
_TIMEOUT = 120
#: name of the man page in the build context and in the image
MAN_FILENAME = "help.1"

STATUS_GENERATED = "generated"
STATUS_SKIPPED = "skipped"


@dataclass(frozen=True)
class AddedHelp:
    """What ``add_help`` did."""

    #: "generated" or "skipped"
    status: str
    #: the markdown file used (relative to the build context), None when skipped
    help_file: str | None
    #: the man page's path in the image, None when skipped
    man_page: str | None = None
    #: why nothing was added (skipped only)
    reason: str | None = None
    instruction: str | None = None

    @property
    def skipped(self) -> bool:
        return self.status == STATUS_SKIPPED


class AddHelpPlugin(PreBuildPlugin):
    """Convert ``help_file`` (markdown, in the build context) into a man page with
    ``go-md2man`` and add it to the image as ``/help.1`` (what ``atomic help`` shows),
    with a ``COPY`` appended to the end of the Dockerfile.

    When the markdown does not start with a ``%`` title block, one is put in front
    for the conversion: ``% <name label> (1) Container Image Pages``, the
    ``maintainer`` label, and today's date (the file in the context is not
    changed). No help file: nothing is added and the skip is recorded. go-md2man
    missing or failing fails the plugin.

    Result: :class:`AddedHelp`: ``status`` "generated" (with ``help_file``,
    ``man_page`` and the instruction) or "skipped" (with ``reason``).
    """

    key = "add_help"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 help_file: str = "help.md") -> None:
        """
        :param help_file: the markdown help file, relative to the build context
        """
        super().__init__(tasker, workflow)
        path = PurePosixPath(help_file)
        if not help_file or path.is_absolute() or ".." in path.parts or "\0" in help_file:
            raise PluginConfigError(
                f"plugin {self.key}: argument help_file must be a path inside the build "
                "context (relative, no '..')", plugin=self.key, argument="help_file")
        self.help_file = help_file

    def _title_block(self) -> str:
        builder = self.builder
        base = _dfedit.base_image_config(builder, self.key)
        labels = {**base.labels,
                  **_dfedit.final_stage_labels(builder.df_path, builder.buildargs, base.env)}
        found = _dfedit.preferred_label(labels, "name")
        name = found[1] if found else ""
        maintainer = labels.get("maintainer") or labels.get("Maintainer") or ""
        today = datetime.now(UTC)
        return (f"% {name} (1) Container Image Pages\n% {maintainer}\n"
                f"% {today:%B} {today.day}, {today.year}\n")

    def _convert(self, markdown: str, man_page: Path) -> None:
        binary = shutil.which(GO_MD2MAN)
        if binary is None:
            raise AtomicReactorError(
                f"{self.key}: {GO_MD2MAN} is not installed (Debian package go-md2man); "
                f"it is needed to turn {self.help_file} into the man page")
        with tempfile.TemporaryDirectory(prefix="add-help-", dir=self.workflow.workdir) as tmp:
            source = Path(tmp, "help.md")
            source.write_text(markdown, encoding="utf-8")
            output = Path(tmp, MAN_FILENAME)
            try:
                done = subprocess.run([binary, f"-in={source}", f"-out={output}"],
                                      capture_output=True, text=True, errors="replace",
                                      timeout=_TIMEOUT, check=False, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise AtomicReactorError(
                    f"{self.key}: {GO_MD2MAN} did not finish within {_TIMEOUT} s") from None
            except OSError as exc:
                raise AtomicReactorError(
                    f"{self.key}: cannot run {GO_MD2MAN}: {exc.strerror or exc}") from None
            if done.returncode != 0:
                detail = (done.stderr or done.stdout).strip().splitlines()
                raise AtomicReactorError(
                    f"{self.key}: {GO_MD2MAN} failed on {self.help_file} "
                    f"(exit {done.returncode}): {' / '.join(detail[:5]) or 'no output'}")
            if not output.is_file():
                raise AtomicReactorError(
                    f"{self.key}: {GO_MD2MAN} succeeded but wrote no man page")
            if man_page.is_dir() and not man_page.is_symlink():
                raise PluginConfigError(
                    f"plugin {self.key}: the build context has a directory {MAN_FILENAME}",
                    plugin=self.key, argument="help_file")
            if man_page.is_symlink() or man_page.exists():
                self.log.warning("replacing %s in the build context", MAN_FILENAME)
                man_page.unlink()
            shutil.copyfile(output, man_page)

    def run(self) -> AddedHelp:
        builder = self.builder
        context = os.path.realpath(builder.df_dir)
        help_path = Path(context, self.help_file)
        resolved = os.path.realpath(help_path)
        if os.path.commonpath([context, resolved]) != context:
            raise PluginConfigError(
                f"plugin {self.key}: {self.help_file} leads outside the build context",
                plugin=self.key, argument="help_file")
        if not os.path.isfile(resolved):
            reason = f"no {self.help_file} in the build context"
            self.log.info("%s: no man page added", reason)
            return AddedHelp(status=STATUS_SKIPPED, help_file=None, reason=reason)
        try:
            markdown = Path(resolved).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PluginConfigError(f"plugin {self.key}: {self.help_file} is not UTF-8 text",
                                    plugin=self.key, argument="help_file") from None
        if not markdown.startswith("% "):
            markdown = self._title_block() + markdown
            self.log.info("added a title block to %s for the man page", self.help_file)
        self._convert(markdown, Path(context, MAN_FILENAME))
        destination = f"/{MAN_FILENAME}"
        instruction = _dfedit.copy_instruction(MAN_FILENAME, destination)
        _dfedit.ensure_in_context(context, [MAN_FILENAME])
        _dfedit.append_lines(builder.df_path, [instruction])
        self.log.info("the image gets the man page %s from %s", destination, self.help_file)
        return AddedHelp(status=STATUS_GENERATED, help_file=self.help_file,
                         man_page=destination, instruction=instruction)
