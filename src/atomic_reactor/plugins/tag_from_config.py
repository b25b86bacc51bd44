"""``tag_from_config``: extra tags for the built image from an ``additional-tags`` file."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._reference import ImageName
from atomic_reactor.errors import AtomicReactorError, InvalidImageName
from atomic_reactor.plugin import PostBuildPlugin
from atomic_reactor.plugins.tag_by_labels import (
    built_image_labels,
    image_repository,
    preferred_label,
)

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["TAGS_FILENAME", "TagFromConfigPlugin", "TagsFromConfig"]

TAGS_FILENAME = "additional-tags"
#: a larger file is refused (it is a short list of tags)
MAX_TAGS_FILE_BYTES = 64 * 1024
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


@dataclass(frozen=True)
class TagsFromConfig:
    """The names ``tag_from_config`` added, or why it added none."""

    #: the file read, relative to the source root
    file: str | None = None
    #: the names added (``name:tag``)
    tags: tuple[str, ...] = ()
    #: entries of the file that were ignored (invalid, or with a '-')
    ignored: tuple[str, ...] = ()
    skipped: bool = False
    reason: str | None = None

    def to_1_6(self) -> list[str]:
        """1.6's result: the list of tags added (``["1.0", "latest"]``)."""
        return [name.rsplit(":", 1)[-1] for name in self.tags]


class TagFromConfigPlugin(PostBuildPlugin):
    """Add ``name:<tag>`` to ``workflow.tag_conf``'s primary names for every tag listed
    in the file ``additional-tags`` next to the Dockerfile (or, failing that, in the
    source root), for ``tag_and_push`` to push; list it before ``tag_and_push`` in
    ``postbuild_plugins``. ``name`` is the built image's ``name`` label (``Name`` in
    the old style); a missing one fails the build when there are tags to add.

    One tag per line; white space around it, empty lines and ``#`` comments are
    ignored. As in atomic-reactor 1.6 a tag with a ``-`` is ignored (those are kept
    for ``version-release`` tags), and so is anything that is not a valid tag (up to
    128 letters, digits, ``_``, ``.``, ``-``, not starting with ``.`` or ``-``), each
    with a warning.

    Result: a :class:`TagsFromConfig` (the file, the names added, the entries
    ignored), or one with ``skipped`` and ``reason`` when there is no such file.
    """

    key = "tag_from_config"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow) -> None:
        super().__init__(tasker, workflow)

    def _find_file(self) -> str | None:
        builder = self.builder
        root = self.workflow.source.path
        for directory in dict.fromkeys([builder.df_dir, root]):
            path = os.path.join(directory, TAGS_FILENAME)
            if os.path.isfile(path):
                return path
        return None

    def read_tags(self, path: str) -> tuple[list[str], list[str]]:
        """``(tags, ignored entries)`` from the file at ``path``."""
        try:
            size = os.path.getsize(path)
            if size > MAX_TAGS_FILE_BYTES:
                raise AtomicReactorError(f"{self.key}: {TAGS_FILENAME} is {size} bytes; the "
                                         f"limit is {MAX_TAGS_FILE_BYTES}")
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as exc:
            raise AtomicReactorError(f"{self.key}: cannot read {TAGS_FILENAME}: "
                                     f"{exc.strerror or exc}") from None
        tags: list[str] = []
        ignored: list[str] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            if "-" in entry:
                self.log.warning("%s line %d: tag %r includes '-'; ignored", TAGS_FILENAME,
                                 number, entry)
                ignored.append(entry)
            elif not _TAG.match(entry):
                self.log.warning("%s line %d: %r is not a valid tag; ignored", TAGS_FILENAME,
                                 number, entry[:200])
                ignored.append(entry[:200])
            elif entry not in tags:
                tags.append(entry)
        return tags, ignored

    def run(self) -> TagsFromConfig:
        path = self._find_file()
        if path is None:
            reason = f"the source has no {TAGS_FILENAME} file"
            self.log.info("%s; no additional tags", reason)
            return TagsFromConfig(skipped=True, reason=reason)
        shown = os.path.relpath(path, self.workflow.source.path)
        tags, ignored = self.read_tags(path)
        if not tags:
            self.log.info("%s lists no usable tag", shown)
            return TagsFromConfig(file=shown, ignored=tuple(ignored))
        name = preferred_label(built_image_labels(self), "name")
        if not name:
            raise AtomicReactorError(f"{self.key}: the built image has no 'name' label to "
                                     f"tag with the tags from {shown}")
        repository = image_repository(self.key, name)
        names: list[str] = []
        for tag in tags:
            try:
                image = ImageName.parse(f"{repository.to_str(tag=False)}:{tag}")
            except InvalidImageName as exc:  # pragma: no cover - tags are checked above
                raise AtomicReactorError(f"{self.key}: {exc}") from None
            self.workflow.tag_conf.add_primary_image(image)
            names.append(str(image))
        self.log.info("additional names from %s: %s", shown, ", ".join(names))
        return TagsFromConfig(file=shown, tags=tuple(names), ignored=tuple(ignored))
