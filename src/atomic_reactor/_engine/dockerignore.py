"""``.dockerignore``: which paths of a build context the docker engine is sent.

The rules are the ones atomic-reactor 1.6 applied through the Docker SDK for Python
(its ``exclude_paths``), kept to the letter so that a context sends what it sent
then; tests compare the two on many trees and patterns. This module exists so that
a build with a ``.dockerignore`` does not import the SDK (and requests) for it.

* A line is a pattern once stripped, unless empty or starting with ``#``; ``!``
  makes it an exception. Leading, trailing and doubled slashes and ``.`` parts do not
  count, ``..`` drops the part before it; a pattern left with no part (``.``, ``/``)
  is ignored.
* ``*`` and ``?`` match within one path part, ``[...]`` (``[!...]``) a character
  (not) in the set, ``**`` any number of parts (``**`` at the end: anything);
  matching ignores case.
* A path is excluded when the last pattern that matches it, or the first parts of
  its parent directory as many as the pattern has, is not an exception. The
  Dockerfile and the ``.dockerignore`` are never excluded.
* An excluded directory is not entered unless an exception's pattern starts with
  its path; a symbolic link is never followed.

Windows paths are not handled (the SDK's separators there differ).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from atomic_reactor.errors import BuildFailed

__all__ = ["included_paths", "read_patterns"]


def read_patterns(root: str) -> list[str]:
    """The patterns of ``root``'s ``.dockerignore`` (none without one)."""
    path = os.path.join(root, ".dockerignore")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle.read().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


def _clean(pattern: str) -> list[str]:
    """The pattern's path parts, with ``..`` taking the part before it away."""
    parts: list[str] = []
    for part in _parts(pattern.strip()):
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return parts


def _bracket(pattern: str, start: int) -> tuple[str, int] | None:
    """The regular expression of the set opened at ``start - 1`` and the index after
    its ``]``; None when it is not closed (the ``[`` is then a plain character)."""
    end = start
    if end < len(pattern) and pattern[end] == "!":
        end += 1
    if end < len(pattern) and pattern[end] == "]":
        end += 1
    end = pattern.find("]", end)
    if end < 0:
        return None
    members = pattern[start:end].replace("\\", "\\\\")
    if members.startswith("!"):
        members = "^" + members[1:]
    elif members.startswith("^"):
        members = "\\" + members
    return f"[{members}]", end + 1


def _regex(pattern: str) -> str:
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*" and pattern[index:index + 1] == "*":
            index += 1
            if pattern[index:index + 1] == "/":
                index += 1
            out.append(".*" if index >= len(pattern) else "(.*/)?")
        elif char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (found := _bracket(pattern, index)) is not None:
            text, index = found
            out.append(text)
        else:
            out.append(re.escape(char))
    out.append("$")
    return "".join(out)


@dataclass(frozen=True)
class _Pattern:
    parts: tuple[str, ...]
    text: str
    exception: bool
    compiled: re.Pattern[str]

    @classmethod
    def parse(cls, line: str) -> _Pattern:
        exception = line.startswith("!")
        parts = tuple(_clean(line[1:] if exception else line))
        text = "/".join(parts)
        return cls(parts, text, exception, re.compile(_regex(text.lower())))

    def matches(self, path: str) -> bool:
        return self.compiled.match(path.lower()) is not None


class _Matcher:
    def __init__(self, lines: Sequence[str]) -> None:
        patterns = [_Pattern.parse(line) for line in lines]
        self.patterns = [p for p in patterns if p.parts] + [_Pattern.parse("!.dockerignore")]

    def excluded(self, path: str) -> bool:
        parent = os.path.dirname(path)
        parent_parts = _parts(parent)
        excluded = False
        for pattern in self.patterns:
            hit = pattern.matches(path)
            if not hit and parent and len(pattern.parts) <= len(parent_parts):
                hit = pattern.matches("/".join(parent_parts[:len(pattern.parts)]))
            if hit:
                excluded = not pattern.exception
        return excluded

    def entered(self, directory: str) -> bool:
        """May an excluded ``directory`` hold a path an exception brings back?"""
        return any(p.exception and p.text.startswith(directory) for p in self.patterns)

    def walk(self, root: str, relative: str = "") -> Iterator[str]:
        where = os.path.join(root, relative) if relative else root
        try:
            names = os.listdir(where)
        except OSError as exc:
            raise BuildFailed(f"cannot read {relative or '.'} in the build context: "
                              f"{exc.strerror}") from None
        for name in names:
            path = os.path.join(relative, name) if relative else name
            excluded = self.excluded(path)
            if not excluded:
                yield path
            full = os.path.join(root, path)
            if not os.path.isdir(full) or os.path.islink(full):
                continue
            if excluded and not self.entered(path):
                continue
            yield from self.walk(root, path)


def included_paths(root: str, patterns: Sequence[str], dockerfile: str | None = None
                   ) -> set[str]:
    """The paths under ``root`` (relative to it, directories too) that ``patterns``
    leave in the context; ``dockerfile`` (default ``Dockerfile``) always stays."""
    named = "Dockerfile" if dockerfile is None else dockerfile
    return set(_Matcher([*patterns, f"!{named}"]).walk(root))
