"""Editing a Dockerfile in place, for the pre-build plugins.

What the plugins that change the Dockerfile share: reading and rewriting the file
safely, appending instructions to the final stage, rewriting a stage's ``FROM``,
quoting ``LABEL`` keys and values, the labels the final stage sets (following
``FROM <stage>`` references), the labels and environment of the base image, and
making sure a file a plugin puts into the build context is not excluded by the
context's ``.dockerignore``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile.parse import parse_stages, read_dockerfile
from atomic_reactor.errors import DockerfileError, ImageNotFound

if TYPE_CHECKING:
    from atomic_reactor.build import InsideBuilder

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LABEL_ALIASES",
    "BaseImageConfig",
    "Instruction",
    "alias_partners",
    "append_lines",
    "base_image_config",
    "copy_instruction",
    "ensure_in_context",
    "escape_token",
    "final_stage_labels",
    "insert_after_last_from",
    "instructions",
    "label_instruction",
    "preferred_label",
    "quote",
    "read",
    "rewrite_from",
    "write",
]

#: old label name -> new label name (atomic-reactor 1.6's table)
DEFAULT_LABEL_ALIASES: Mapping[str, str] = {
    "Build_Host": "com.redhat.build-host",
    "Version": "version",
    "Release": "release",
    "Name": "name",
    "Architecture": "architecture",
    "BZComponent": "com.redhat.component",
    "Vendor": "vendor",
    "Authoritative_Registry": "authoritative-source-url",
    "RHBuild": "rhbuild",
}

_DIRECTIVE = re.compile(r"\s*#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S+)\s*\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


# -- reading and writing -------------------------------------------------------------


def read(path: str | Path) -> str:
    """The Dockerfile's text (:class:`DockerfileError` when unusable)."""
    return read_dockerfile(path)


def write(path: str | Path, text: str) -> None:
    """Replace the Dockerfile's content atomically, keeping its permissions."""
    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=".dockerfile-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Instruction:
    """One instruction of a Dockerfile, as dockerfile-parse sees it."""

    instruction: str
    #: 0-based first and last physical line (continuations included)
    startline: int
    endline: int
    content: str
    value: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions (comments and blank lines left out)."""
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    try:
        structure = parser.structure
    except Exception as exc:  # the parser's own errors: report as a bad Dockerfile
        raise DockerfileError(f"cannot parse Dockerfile: {exc}") from None
    return [Instruction(instruction=str(item["instruction"]).upper(),
                        startline=int(item["startline"]), endline=int(item["endline"]),
                        content=str(item["content"]), value=str(item["value"]))
            for item in structure]


def escape_token(text: str) -> str:
    """The escape character (``\\`` unless a ``# escape=`` parser directive says otherwise)."""
    for line in text.splitlines():
        match = _DIRECTIVE.match(line)
        if match is None:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            return match.group(2)
    return "\\"


# -- adding instructions -------------------------------------------------------------


def _check_lines(lines: Sequence[str]) -> list[str]:
    checked = []
    for line in lines:
        stripped = line.rstrip("\n")
        if "\n" in stripped or "\r" in stripped:
            raise ValueError("an instruction to add spans several lines")
        checked.append(stripped)
    return checked


def _ends_in_continuation(text: str, escape: str) -> bool:
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return stripped.endswith(escape)
    return False


def append_lines(path: str | Path, lines: Sequence[str]) -> None:
    """Add ``lines`` (one instruction each) at the end of the Dockerfile: the final stage."""
    new = _check_lines(lines)
    text = read(path)
    if _ends_in_continuation(text, escape_token(text)):
        raise DockerfileError("the Dockerfile ends with a line continuation; "
                              "cannot add instructions after it")
    if not text.endswith("\n"):
        text += "\n"
    write(path, text + "".join(f"{line}\n" for line in new))


def insert_after_last_from(path: str | Path, lines: Sequence[str]) -> None:
    """Add ``lines`` right after the final stage's ``FROM`` instruction."""
    new = _check_lines(lines)
    text = read(path)
    froms = [item for item in instructions(text) if item.instruction == "FROM"]
    if not froms:
        raise DockerfileError("the Dockerfile has no FROM instruction")
    physical = text.splitlines(keepends=True)
    at = froms[-1].endline + 1
    if at == len(physical) and physical and not physical[-1].endswith("\n"):
        physical[-1] += "\n"
    physical[at:at] = [f"{line}\n" for line in new]
    write(path, "".join(physical))


def rewrite_from(text: str, stage: int, image: str) -> str:
    """``text`` with the image of the ``stage``-th FROM (0-based) replaced by ``image``.

    Flags (``--platform=…``) and ``AS name`` are kept; a FROM written over several
    lines becomes one line.
    """
    froms = [item for item in instructions(text) if item.instruction == "FROM"]
    if not 0 <= stage < len(froms):
        raise DockerfileError(f"the Dockerfile has no stage {stage}")
    item = froms[stage]
    words = item.value.split()
    flags = [word for word in words if word.startswith("--")]
    rest = [word for word in words if not word.startswith("--")]
    if not rest:
        raise DockerfileError(f"FROM on line {item.startline + 1} names no image")
    physical = text.splitlines(keepends=True)
    first = physical[item.startline]
    match = re.match(r"(\s*)(\S+)", first)
    indent, keyword = (match.group(1), match.group(2)) if match else ("", "FROM")
    line = f"{indent}{keyword} {' '.join([*flags, image, *rest[1:]])}\n"
    physical[item.startline:item.endline + 1] = [line]
    return "".join(physical)


# -- quoting ---------------------------------------------------------------------------


def quote(value: str, escape: str = "\\") -> str:
    """``value`` as one literal Dockerfile word: no variable expansion, no splitting.

    Single quotes (inside them nothing is special); a ``'`` closes the quotes, comes
    double-quoted, and they reopen: ``it's`` -> ``'it'"'"'s'``. No escape character is
    needed, so the word reads back alike whatever the Dockerfile's escape directive
    (``escape`` is accepted for callers that pass it; buildah's word parser ignores
    ``# escape=`` and Docker's honours it, so relying on it would split the engines).
    Docker, buildah and dockerfile-parse read this back alike (they differ on
    backslashes inside double quotes, which never occur here).
    Raises :class:`ValueError` for control characters (a word cannot hold a newline).
    """
    del escape  # the quoting uses no escape character
    if _CONTROL.search(value):
        raise ValueError("contains a control character (newline, …)")
    return "'" + value.replace("'", "'\"'\"'") + "'"


def label_instruction(labels: Mapping[str, str], escape: str = "\\") -> str:
    """One ``LABEL 'k'='v' …`` instruction setting ``labels`` (in the given order)."""
    if not labels:
        raise ValueError("no labels to set")
    pairs = [f"{quote(key, escape)}={quote(value, escape)}" for key, value in labels.items()]
    return "LABEL " + " ".join(pairs)


def copy_instruction(source: str, destination: str) -> str:
    """``COPY ["source", "destination"]`` (the JSON form: spaces need no escaping)."""
    for what, value in (("source", source), ("destination", destination)):
        if _CONTROL.search(value) or "$" in value:
            raise ValueError(f"COPY {what} {value!r} contains '$' or a control character")
    return "COPY " + json.dumps([source, destination])


# -- labels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseImageConfig:
    """What the final stage inherits from its base image (empty for ``FROM scratch``)."""

    image: str | None
    labels: dict[str, str]
    env: dict[str, str]


def base_image_config(builder: InsideBuilder, plugin: str) -> BaseImageConfig:
    """Labels and environment of the final stage's base image.

    :class:`ImageNotFound` (saying which plugin needed it) when the base image is not
    on the engine: ``pull_base_image`` must run first.
    """
    if builder.base_image is None:
        return BaseImageConfig(image=None, labels={}, env={})
    try:
        info = builder.base_info()
    except ImageNotFound as exc:
        raise ImageNotFound(
            f"{plugin}: the base image {builder.base_image} is not on the engine ({exc}); "
            "pull it first (pull_base_image)") from None
    if info is None:
        return BaseImageConfig(image=None, labels={}, env={})
    return BaseImageConfig(image=str(builder.base_image), labels=dict(info.labels),
                           env=info.environment)


def final_stage_labels(path: str | Path, build_args: Mapping[str, str] | None = None,
                       base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels the Dockerfile gives its final image.

    That is the final stage's ``LABEL`` s plus those of the stages it is built
    ``FROM`` (``FROM builder``), with ARG/ENV substitution as the build does it
    (``base_env``: the base image's environment). Labels inherited from the base
    image are not included.
    """
    from dockerfile_parse import DockerfileParser

    text = read(path)
    stages = parse_stages(path, dict(build_args or {}))
    chain = [stages[-1]]
    while chain[0].stage_ref is not None:
        chain.insert(0, stages[chain[0].stage_ref])
    froms = [item for item in instructions(text) if item.instruction == "FROM"]
    physical = text.splitlines(keepends=True)
    env = dict(base_env or {})
    labels: dict[str, str] = {}
    for stage in chain:
        end = froms[stage.index + 1].startline if stage.index + 1 < len(froms) else len(physical)
        parser = DockerfileParser(fileobj=io.BytesIO("".join(physical[:end]).encode("utf-8")),
                                  build_args=dict(build_args or {}), parent_env=dict(env))
        try:
            labels.update({str(k): str(v) for k, v in parser.labels.items()})
            env.update({str(k): str(v) for k, v in parser.envs.items()})
        except Exception as exc:  # the parser's own errors: report as a bad Dockerfile
            raise DockerfileError(f"cannot parse Dockerfile: {exc}") from None
    return labels


def alias_partners(label: str, aliases: Mapping[str, str] = DEFAULT_LABEL_ALIASES) -> list[str]:
    """``label`` and every name ``aliases`` ties to it (new name first)."""
    names = [label]
    for old, new in aliases.items():
        if label == old and new not in names:
            names.insert(0, new)
        elif label == new and old not in names:
            names.append(old)
    return names


def preferred_label(labels: Mapping[str, str], label: str,
                    aliases: Mapping[str, str] = DEFAULT_LABEL_ALIASES
                    ) -> tuple[str, str] | None:
    """``(name, value)`` of ``label`` or an alias of it with a non-empty value, or None."""
    for name in alias_partners(label, aliases):
        value = labels.get(name)
        if value is not None and value.strip():
            return name, value
    return None


# -- the build context -------------------------------------------------------------------


def ensure_in_context(context_dir: str | Path, names: Iterable[str]) -> list[str]:
    """Make sure ``.dockerignore`` (if the context has one) does not exclude ``names``.

    ``names`` are paths relative to the context; an exception line ``!name`` is
    appended for each (the last matching pattern wins). Returns the lines added.
    """
    ignore = Path(context_dir) / ".dockerignore"
    if not ignore.is_file():
        return []
    text = ignore.read_text(encoding="utf-8", errors="replace")
    present = {line.strip() for line in text.splitlines()}
    added = [f"!{name}" for name in names if f"!{name}" not in present]
    if added:
        if text and not text.endswith("\n"):
            text += "\n"
        ignore.write_text(text + "".join(f"{line}\n" for line in added), encoding="utf-8")
        logger.info("re-included %s in the build context's .dockerignore",
                    ", ".join(name.lstrip("!") for name in added))
    return added
