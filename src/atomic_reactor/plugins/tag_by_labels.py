"""``tag_by_labels``: name the built image after its name, version and release labels."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from atomic_reactor._reference import ImageName
from atomic_reactor.errors import AtomicReactorError, InvalidImageName
from atomic_reactor.plugin import Plugin, PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["MAX_TAG_LENGTH", "LabelTags", "TagByLabelsPlugin", "built_image_labels",
           "image_repository", "preferred_label", "unique_tag"]

#: the registry API's limit on tag length
MAX_TAG_LENGTH = 128

#: label names, preferred first (the capitalised ones are atomic-reactor 1.6's old style)
_ALIASES: Mapping[str, tuple[str, ...]] = {
    "name": ("name", "Name"),
    "version": ("version", "Version"),
    "release": ("release", "Release"),
}


@dataclass(frozen=True)
class LabelTags:
    """The names ``tag_by_labels`` gave the image."""

    name: str
    version: str | None
    release: str | None
    unique_tag: str
    #: ``name:version-release``, ``name:version``, ``name:latest`` (none with unique_tag_only)
    primary: tuple[str, ...]
    #: ``name:<unique_tag>``
    unique: tuple[str, ...]


def built_image_labels(plugin: Plugin) -> dict[str, str]:
    """The labels of the image ``plugin``'s workflow built (empty when it has none)."""
    _ = plugin.image_id  # raises, naming the plugin, when nothing was built
    return dict(plugin.builder.built_info().labels)


def preferred_label(labels: Mapping[str, str], kind: str) -> str | None:
    """The value of the first alias of ``kind`` (``name``, ``version``, ``release``) set."""
    for alias in _ALIASES[kind]:
        if alias in labels:
            return labels[alias]
    return None


def image_repository(plugin_key: str, name: str) -> ImageName:
    """The repository the ``name`` label names (registry kept; no tag allowed)."""
    try:
        reference = ImageName.parse(name)
    except InvalidImageName as exc:
        raise AtomicReactorError(f"{plugin_key}: label name={name!r} is not a repository "
                                 f"name: {exc}") from None
    if reference.digest or ":" in name.rsplit("/", 1)[-1]:
        raise AtomicReactorError(f"{plugin_key}: label name={name!r} must not have a tag")
    return reference.copy(tag=None)


def unique_tag(now: datetime | None = None) -> str:
    """A tag no other build gets: UTC time to the second, then 6 random hex digits.

    Tags made this way sort by build time (``20250102T030405-1a2b3c``).
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


class TagByLabelsPlugin(PostBuildPlugin):
    """Add names for the built image from its ``name``, ``version`` and ``release``
    labels (the old-style ``Name``/``Version``/``Release`` too) to
    ``workflow.tag_conf``, for ``tag_and_push`` to push; list it before
    ``tag_and_push`` in ``postbuild_plugins`` (a request's default ``tag_and_push``
    comes last).

    Primary names: ``name:version-release``, ``name:version`` and ``name:latest``
    (``version-release`` cut to 128 characters by shortening the release). Unique name:
    ``name:<UTC time>-<random>`` (e.g. ``20250102T030405-1a2b3c``), which sorts by build
    time and is not reused by any other build (1.6 used the workflow image's tag,
    which need not be unique). A missing label, or one that makes an invalid tag,
    fails the build naming it; only ``name`` is needed with ``unique_tag_only``.

    Result: a :class:`LabelTags` (the labels used, the unique tag, the primary and
    unique names added).
    """

    key = "tag_by_labels"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 unique_tag_only: bool = False) -> None:
        """
        :param unique_tag_only: add only the unique name, not the primary ones
        """
        super().__init__(tasker, workflow)
        self.unique_tag_only = unique_tag_only

    def _label(self, labels: Mapping[str, str], kind: str) -> str:
        value = preferred_label(labels, kind)
        if not value:
            state = "empty" if value is not None else "missing"
            raise AtomicReactorError(f"{self.key}: the built image's label {kind!r} is "
                                     f"{state}")
        return value

    def _name(self, repository: ImageName, tag: str, what: str) -> ImageName:
        try:
            return ImageName.parse(f"{repository.to_str(tag=False)}:{tag}")
        except InvalidImageName as exc:
            raise AtomicReactorError(f"{self.key}: {what} does not make a valid tag: "
                                     f"{exc}") from None

    def run(self) -> LabelTags:
        labels = built_image_labels(self)
        if not labels:
            raise AtomicReactorError(f"{self.key}: the built image has no labels "
                                     "(it needs name, version and release)")
        name = self._label(labels, "name")
        repository = image_repository(self.key, name)
        tag = unique_tag()
        unique = self._name(repository, tag, "the unique tag")
        self.workflow.tag_conf.add_unique_image(unique)
        if self.unique_tag_only:
            self.log.info("unique name %s (primary names skipped: unique_tag_only)", unique)
            return LabelTags(name=name, version=None, release=None, unique_tag=tag,
                             primary=(), unique=(str(unique),))

        version = self._label(labels, "version")
        release = self._label(labels, "release")
        longest = f"{version}-{release}"
        if len(longest) > MAX_TAG_LENGTH:
            self.log.warning("tag %s is longer than %d characters; shortening the release",
                             longest, MAX_TAG_LENGTH)
            longest = longest[:MAX_TAG_LENGTH]
        primary = [
            self._name(repository, longest, f"labels version={version!r}, release={release!r}"),
            self._name(repository, version, f"label version={version!r}"),
            self._name(repository, "latest", "latest"),
        ]
        self.workflow.tag_conf.add_primary_images(primary)
        self.log.info("names: %s; unique: %s", ", ".join(map(str, primary)), unique)
        return LabelTags(name=name, version=version, release=release, unique_tag=tag,
                         primary=tuple(str(p) for p in primary), unique=(str(unique),))
