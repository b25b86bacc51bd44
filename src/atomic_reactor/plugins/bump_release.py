"""``bump_release``: give the image the next free release number when it has none."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.errors import DockerfileError, ImageNotFound, InvalidImageName
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["BumpReleasePlugin", "BumpedRelease"]

_RELEASE = re.compile(r"[A-Za-z0-9_.]+\Z")


@dataclass(frozen=True)
class BumpedRelease:
    """The release ``bump_release`` set, or why it set none."""

    name: str | None = None
    version: str | None = None
    #: the release label the image gets (None when skipped)
    release: str | None = None
    #: the highest earlier release found in the registries (None: there was none)
    previous: str | None = None
    #: the registries whose tags were read
    registries: tuple[str, ...] = ()
    skipped: bool = False
    reason: str | None = None


class BumpReleasePlugin(PreBuildPlugin):
    """When the Dockerfile's final stage sets no ``release`` label (nor ``Release``),
    add ``LABEL release=N`` to it, N being one more than the highest numeric release
    already pushed: the tags ``<version>-<N>`` of the repository named by the ``name``
    label, in every registry ``tag_and_push`` pushes to (its ``registries`` argument,
    with their ``insecure`` and ``secret`` settings). N is 1 when there is no such tag
    (or no target registry). ``name`` and ``version`` come from the final stage's
    labels (those of the stages it is built from included, variables substituted); a
    missing or empty one fails the build.

    With ``append``, the release becomes ``<release>.<M>`` instead (``<release>`` the
    label's value, 1 when unset), M one more than the highest M among tags
    ``<version>-<release>.<M>``; the label is set even when the Dockerfile has one.

    Builds running at the same time may pick the same release (nothing is reserved).

    Result: a :class:`BumpedRelease` (name, version, the release set, the highest
    earlier release found, the registries read), or one with ``skipped`` and ``reason``
    when the Dockerfile sets the release itself.
    """

    key = "bump_release"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 append: bool = False) -> None:
        """
        :param append: append ``.<M>`` to the Dockerfile's release instead of replacing it
        """
        super().__init__(tasker, workflow)
        self.append = append
        retry = getattr(tasker, "retry", None)
        self.retry: RetryPolicy = retry if isinstance(retry, RetryPolicy) else RetryPolicy()

    # -- inputs ------------------------------------------------------------------------
    def _registries(self) -> dict[str, Mapping[str, Any]]:
        args = self.workflow.plugin_args("tag_and_push") or {}
        registries = args.get("registries") or {}
        return {str(name): (conf or {}) for name, conf in registries.items()}

    def _tags(self, repository: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for registry, conf in self._registries().items():
            with RegistryClient(registry, insecure=bool(conf.get("insecure", False)),
                                secret=conf.get("secret"), retry=self.retry) as client:
                found[registry] = client.list_tags(repository)
            self.log.debug("%s/%s has %d tags", registry, repository, len(found[registry]))
        return found

    @staticmethod
    def _highest(tags: dict[str, list[str]], pattern: re.Pattern[str]) -> int | None:
        numbers = [int(match.group(1)) for registry_tags in tags.values()
                   for match in map(pattern.match, registry_tags) if match]
        return max(numbers) if numbers else None

    # -- running ---------------------------------------------------------------------
    def run(self) -> BumpedRelease:
        builder = self.builder
        try:
            base_env = _dfedit.base_image_config(builder, self.key).env
        except ImageNotFound:  # only needed for ${VARIABLES} from the base image
            self.log.warning("base image not on the engine; labels using its ENV are not "
                             "resolved")
            base_env = {}
        labels = _dfedit.final_stage_labels(builder.df_path, builder.buildargs, base_env)
        values: dict[str, str] = {}
        for kind in ("name", "version"):
            found = _dfedit.preferred_label(labels, kind)
            if found is None:
                raise DockerfileError(
                    f"{self.key}: the Dockerfile sets no {kind!r} label (or it is empty); "
                    "the release is counted per name and version")
            values[kind] = found[1]
        name, version = values["name"], values["version"]
        found = _dfedit.preferred_label(labels, "release")
        release_label, release = found if found is not None else (None, None)
        if release and not self.append:
            reason = f"the Dockerfile sets {release_label}={release}"
            self.log.info("%s; not bumping", reason)
            return BumpedRelease(name=name, version=version, release=None, skipped=True,
                                 reason=reason)
        try:
            reference = ImageName.parse(name)
        except InvalidImageName as exc:
            raise DockerfileError(f"{self.key}: label name={name!r} is not a repository "
                                  f"name: {exc}") from None
        if reference.digest or ":" in name.rsplit("/", 1)[-1]:
            raise DockerfileError(f"{self.key}: label name={name!r} must not have a tag")
        repository = reference.get_repo()

        registries = self._registries()
        if not registries:
            self.log.warning("no target registries (tag_and_push); cannot look for earlier "
                             "releases of %s:%s", repository, version)
        tags = self._tags(repository)
        if self.append:
            base = release or "1"
            if not _RELEASE.match(base):
                raise DockerfileError(
                    f"{self.key}: release {base!r} can only have letters, digits, '.' and "
                    "'_' to append to it")
            pattern = re.compile(rf"{re.escape(version)}-{re.escape(base)}\.(\d+)\Z")
            highest = self._highest(tags, pattern)
            new_release = f"{base}.{(highest or 0) + 1}"
            previous = None if highest is None else f"{base}.{highest}"
        else:
            pattern = re.compile(rf"{re.escape(version)}-(\d+)\Z")
            highest = self._highest(tags, pattern)
            new_release = str((highest or 0) + 1)
            previous = None if highest is None else str(highest)

        new_labels = {"release": new_release}
        if release_label and release_label != "release":
            new_labels[release_label] = new_release  # keep an old-style label in step
        text = _dfedit.read(builder.df_path)
        _dfedit.append_lines(builder.df_path,
                             [_dfedit.label_instruction(new_labels, _dfedit.escape_token(text))])
        self.log.info("release of %s:%s set to %s (highest earlier: %s; registries: %s)",
                      repository, version, new_release, previous or "none",
                      ", ".join(registries) or "none")
        return BumpedRelease(name=name, version=version, release=new_release,
                             previous=previous, registries=tuple(registries))
