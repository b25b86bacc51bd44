"""Reading a Dockerfile and finding its stages and parent images."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from atomic_reactor.errors import DockerfileError

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
    if not text.strip():
        raise DockerfileError(f"Dockerfile {file.name} is empty")
    return text


def _split_from(value: str) -> tuple[str, str | None]:
    words = [w for w in value.split() if not w.startswith("--")]
    if not words:
        return "", None
    alias = None
    if len(words) >= 3 and words[1].lower() == "as":
        alias = words[2]
    return words[0], alias


def parse_stages(path: str | Path, build_args: dict[str, str] | None = None) -> list[Stage]:
    """Every FROM of the Dockerfile at ``path``; :class:`DockerfileError` if there is none."""
    from dockerfile_parse import DockerfileParser

    text = read_dockerfile(path)
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")),
                              build_args=build_args or {})
    try:
        structure = parser.structure
        images = parser.parent_images
    except Exception as exc:  # the parser's own errors: report as a bad Dockerfile
        raise DockerfileError(f"cannot parse Dockerfile: {exc}") from None
    froms = [item for item in structure if item["instruction"] == "FROM"]
    if not froms:
        raise DockerfileError(f"Dockerfile {Path(path).name} has no FROM instruction")
    stages: list[Stage] = []
    aliases: dict[str, int] = {}
    for index, (item, substituted) in enumerate(zip(froms, images, strict=False)):
        written, alias = _split_from(item["value"])
        image = substituted or written
        if not image:
            raise DockerfileError(f"FROM on line {item['startline'] + 1} names no image")
        stage_ref = aliases.get(image.lower())
        stages.append(Stage(index=index, image=image, alias=alias, stage_ref=stage_ref,
                            line=int(item["startline"])))
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
