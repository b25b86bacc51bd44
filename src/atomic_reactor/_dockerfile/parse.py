"""Reading a Dockerfile and finding its stages and parent images."""

from __future__ import annotations

import io
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atomic_reactor._reference import ImageName
from atomic_reactor.errors import DockerfileError, InvalidImageName

__all__ = ["MAX_DOCKERFILE_BYTES", "Stage", "parse_stages", "read_dockerfile"]

#: a Dockerfile larger than this is refused (Dockerfiles are small text files)
MAX_DOCKERFILE_BYTES = 1024 * 1024

SCRATCH = "scratch"


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` of a Dockerfile."""

    index: int
    #: the image as written, with build args substituted
    image: str
    alias: str | None
    #: index of the earlier stage ``image`` names, if it names one
    stage_ref: int | None
    #: 0-based line of the FROM instruction
    line: int

    @property
    def is_external(self) -> bool:
        """Does this FROM name an image to pull (not a stage, not ``scratch``)?"""
        return self.stage_ref is None and self.image != SCRATCH


def read_dockerfile(path: str | Path) -> str:
    """The Dockerfile's text; :class:`DockerfileError` when it is unusable."""
    file = Path(path)
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise DockerfileError(f"no Dockerfile at {file}") from None
    if size > MAX_DOCKERFILE_BYTES:
        raise DockerfileError(
            f"Dockerfile {file.name} is {size} bytes; the limit is {MAX_DOCKERFILE_BYTES}")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DockerfileError(
            f"Dockerfile {file.name} is not UTF-8 (bad byte at offset {exc.start})") from None
    text = text.removeprefix("\ufeff")  # docker accepts a byte order mark
    if not text.strip():
        raise DockerfileError(f"Dockerfile {file.name} is empty")
    return text


_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


def expand(text: str, values: Mapping[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}`` and ``${VAR:+alt}`` as docker does."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        value = values.get(name, "")
        if match.group(2) == "-":
            return value or match.group(3)
        if match.group(2) == "+":
            return match.group(3) if value else ""
        return value

    return _VARIABLE.sub(substitute, text)


def _global_args(structure: list[dict[str, Any]], build_args: Mapping[str, str]
                 ) -> dict[str, str]:
    """ARGs declared before the first FROM (the only ones FROM can use)."""
    values: dict[str, str] = {}
    for item in structure:
        if item["instruction"] == "FROM":
            break
        if item["instruction"] != "ARG":
            continue
        try:
            words = shlex.split(item["value"])
        except ValueError:
            words = item["value"].split()
        for word in words:
            name, sep, default = word.partition("=")
            if name in build_args:
                values[name] = build_args[name]
            elif sep:
                values[name] = expand(default, values)
    return values


def _split_from(value: str) -> tuple[str, str | None]:
    words = [w for w in value.split() if not w.startswith("--")]
    if not words:
        return "", None
    alias = None
    if len(words) >= 3 and words[1].lower() == "as":
        alias = words[2]
    return words[0], alias


def parse_stages(path: str | Path, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """Every FROM of the Dockerfile at ``path``; :class:`DockerfileError` if there is none."""
    from dockerfile_parse import DockerfileParser

    text = read_dockerfile(path)
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")), env_replace=False)
    try:
        structure = parser.structure
    except Exception as exc:  # the parser's own errors: report as a bad Dockerfile
        raise DockerfileError(f"cannot parse Dockerfile: {exc}") from None
    froms = [item for item in structure if item["instruction"] == "FROM"]
    if not froms:
        raise DockerfileError(f"Dockerfile {Path(path).name} has no FROM instruction")
    values = _global_args(structure, build_args or {})
    stages: list[Stage] = []
    aliases: dict[str, int] = {}
    for index, item in enumerate(froms):
        line = int(item["startline"]) + 1
        written, alias = _split_from(item["value"])
        image = expand(written, values)
        if not image:
            raise DockerfileError(f"FROM on line {line} names no image "
                                  f"({written or 'nothing'} is empty: an undefined build arg?)")
        stage_ref = aliases.get(image.lower())
        if stage_ref is None and image != SCRATCH:
            try:
                ImageName.parse(image)
            except InvalidImageName as exc:
                raise DockerfileError(f"FROM on line {line}: {exc}") from None
        stages.append(Stage(index=index, image=image, alias=alias, stage_ref=stage_ref,
                            line=line - 1))
        if alias:
            aliases[alias.lower()] = index
    return stages


def external_images(stages: list[Stage]) -> list[str]:
    """The images the FROM lines pull, in order, once each."""
    seen: list[str] = []
    for stage in stages:
        if stage.is_external and stage.image not in seen:
            seen.append(stage.image)
    return seen


def final_base(stages: list[Stage]) -> str:
    """The image the final stage is built on (following stage references)."""
    stage = stages[-1]
    while stage.stage_ref is not None:
        stage = stages[stage.stage_ref]
    return stage.image
