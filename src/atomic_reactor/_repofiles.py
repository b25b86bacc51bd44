"""Yum repo files and the Dockerfile edits that make them available during ``RUN``.

Shared by the ``add_yum_repo_by_url`` plugin (fetching and checking repo files) and
the ``inject_yum_repo`` plugin (putting them into the build). Also holds the small
Dockerfile helpers both need (line-based edits that keep the rest of the file as
written).
"""

from __future__ import annotations

import configparser
import hashlib
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from atomic_reactor.errors import DockerfileError

__all__ = [
    "REPOS_DIR",
    "REPO_SUFFIX",
    "DockerfileInstruction",
    "RepoFile",
    "display_url",
    "dockerfile_instructions",
    "edit_dockerfile",
    "is_root_user",
    "repo_filename",
    "repo_sections",
    "set_proxy",
]

#: where yum (and dnf) read repo files
REPOS_DIR = "/etc/yum.repos.d"
#: yum only reads files with this suffix
REPO_SUFFIX = ".repo"
#: options of which a usable repo section has at least one
SOURCE_OPTIONS = ("baseurl", "metalink", "mirrorlist")

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class RepoFile:
    """A yum repo file to put into ``/etc/yum.repos.d`` for the build's ``RUN`` steps.

    ``content`` is left out of the JSON form (repo files can hold credentials).
    """

    filename: str
    #: where it came from, credentials and query redacted
    url: str | None
    #: the repo ids (sections) it defines
    sections: tuple[str, ...]
    size: int
    proxy_injected: bool = False
    content: str = field(default="", repr=False)

    @property
    def path(self) -> str:
        """Its path in the image."""
        return f"{REPOS_DIR}/{self.filename}"


# -- URLs and names ------------------------------------------------------------------------


def display_url(url: str) -> str:
    """``url`` safe to show: ``user:password@`` and the query string replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    shown = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else url.split("?", 1)[0]
    if parts.query:
        shown += "?***"
    return shown


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:5]


def repo_filename(url: str, taken: Iterable[str] = ()) -> str:
    """The file name for the repo file at ``url``.

    The last path component of the URL, with characters other than letters, digits,
    ``.``, ``_`` and ``-`` replaced by ``_`` and ``.repo`` appended when missing (yum
    reads nothing else). When that name is in ``taken``, a short hash of the URL goes
    before the suffix (``name-1a2b3.repo``), as atomic-reactor did.
    """
    path = unquote(urlsplit(url, allow_fragments=False).path)
    base = path.rstrip("/").rsplit("/", 1)[-1]
    base = _SAFE_NAME.sub("_", base).lstrip(".") or "repo"
    if not base.endswith(REPO_SUFFIX):
        base += REPO_SUFFIX
    return unique_name(base, taken, url)


def unique_name(name: str, taken: Iterable[str], salt: str) -> str:
    """``name``, or ``name`` with a hash of ``salt`` before its suffix if it is taken."""
    taken = set(taken)
    if name not in taken:
        return name
    stem = name[: -len(REPO_SUFFIX)] if name.endswith(REPO_SUFFIX) else name
    candidate = f"{stem}-{_short_hash(salt)}{REPO_SUFFIX}"
    counter = 1
    while candidate in taken:
        counter += 1
        candidate = f"{stem}-{_short_hash(f'{salt}#{counter}')}{REPO_SUFFIX}"
    return candidate


# -- repo file content ---------------------------------------------------------------------


def repo_sections(text: str) -> tuple[str, ...]:
    """The repo ids ``text`` defines; ``ValueError`` saying why it is not a repo file.

    A repo file is an INI file with at least one section that has a ``baseurl``,
    ``metalink`` or ``mirrorlist``.
    """
    parser = configparser.ConfigParser(interpolation=None, strict=False,
                                       default_section="\0no-default\0")
    try:
        parser.read_string(text)
    except configparser.MissingSectionHeaderError:
        raise ValueError("it does not start with a [section] header") from None
    except configparser.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"it is not an INI file ({first[:200]})") from None
    sections = parser.sections()
    if not sections:
        raise ValueError("it defines no [repository] section")
    usable = tuple(name for name in sections
                   if any(parser.has_option(name, option) for option in SOURCE_OPTIONS))
    if not usable:
        raise ValueError("no section has a baseurl, metalink or mirrorlist")
    return tuple(sections)


_SECTION = re.compile(r"^\s*\[[^\]]+\]\s*(?:[#;].*)?$")
_PROXY_OPTION = re.compile(r"^proxy\s*[=:]", re.IGNORECASE)


def set_proxy(text: str, proxy: str) -> str:
    """``text`` with ``proxy=<proxy>`` in every section (replacing any proxy it had).

    The rest of the file (comments, order, other options) stays as it was.
    """
    out: list[str] = []
    in_section = False
    skipping = False
    for line in text.splitlines():
        if skipping and line[:1] in (" ", "\t") and line.strip():
            continue  # continuation of a replaced proxy option
        skipping = False
        if _SECTION.match(line):
            in_section = True
            out.append(line)
            out.append(f"proxy={proxy}")
            continue
        if in_section and _PROXY_OPTION.match(line):
            skipping = True
            continue
        out.append(line)
    return "\n".join(out) + "\n"


# -- Dockerfiles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerfileInstruction:
    """One instruction of a Dockerfile, as dockerfile-parse sees it."""

    instruction: str
    value: str
    #: 0-based first and last line
    startline: int
    endline: int
    #: index of the stage (FROM) it belongs to; -1 before the first FROM
    stage: int


def dockerfile_instructions(text: str) -> list[DockerfileInstruction]:
    """The instructions of the Dockerfile ``text``."""
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))
    try:
        structure: list[dict[str, Any]] = parser.structure
    except Exception as exc:  # the parser's own errors: report as a bad Dockerfile
        raise DockerfileError(f"cannot parse Dockerfile: {exc}") from None
    stage = -1
    result: list[DockerfileInstruction] = []
    for item in structure:
        instruction = str(item["instruction"]).upper()
        if instruction == "FROM":
            stage += 1
        result.append(DockerfileInstruction(instruction=instruction, value=str(item["value"]),
                                            startline=int(item["startline"]),
                                            endline=int(item["endline"]), stage=stage))
    return result


def _split_lines(text: str) -> list[str]:
    """Lines as dockerfile-parse numbers them (split on ``\\n`` only), each with its end."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1] + "\n")
    return lines


def edit_dockerfile(text: str, before: Mapping[int, Sequence[str]],
                    after: Mapping[int, Sequence[str]], append: Sequence[str] = ()) -> str:
    """``text`` with lines inserted before/after the given 0-based lines, and at the end."""
    out: list[str] = []
    for index, line in enumerate(_split_lines(text)):
        out.extend(f"{new}\n" for new in before.get(index, ()))
        out.append(line)
        out.extend(f"{new}\n" for new in after.get(index, ()))
    out.extend(f"{new}\n" for new in append)
    return "".join(out)


def replace_lines(text: str, replacements: Mapping[int, tuple[int, str]]) -> str:
    """``text`` with lines ``start..end`` (0-based, inclusive) replaced by one line,
    for each ``start: (end, line)`` of ``replacements``."""
    out: list[str] = []
    skip_to = -1
    for index, line in enumerate(_split_lines(text)):
        if index <= skip_to:
            continue
        if index in replacements:
            end, new = replacements[index]
            out.append(f"{new}\n")
            skip_to = end
            continue
        out.append(line)
    return "".join(out)


_ROOT_USERS = {"", "root", "0", "root:root", "0:0", "root:0", "0:root"}


def is_root_user(user: str | None) -> bool:
    """Is ``user`` (a USER value or an image's ``Config.User``) certainly root?"""
    return (user or "").strip() in _ROOT_USERS
