"""``add_labels_in_dockerfile``: set labels on the image through its Dockerfile."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["AUTO_LABELS", "AddLabelsPlugin", "AddedLabels"]

#: the labels the plugin can compute
AUTO_LABELS = ("build-date", "architecture", "vcs-type", "vcs-url", "vcs-ref",
               "com.redhat.build-host")

#: engine (Go) architecture names -> the names images are labelled with
_ARCHITECTURES = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386"}

# precedence of where a label is set (higher wins)
_BASE, _DOCKERFILE, _REQUEST = 0, 1, 2
_WHERE = {_BASE: "the base image", _DOCKERFILE: "the Dockerfile", _REQUEST: "this plugin"}


@dataclass(frozen=True)
class AddedLabels:
    """What ``add_labels_in_dockerfile`` did to the Dockerfile."""

    #: the labels written (the LABEL instruction's content), in order
    labels: dict[str, str]
    #: labels left alone because of ``dont_overwrite``: name -> the value already set
    kept: dict[str, str] = field(default_factory=dict)
    #: the instruction appended (None when nothing needed setting)
    instruction: str | None = None


class AddLabelsPlugin(PreBuildPlugin):
    """Add labels to the image: one ``LABEL`` instruction appended to the end of the
    Dockerfile (the final stage; at the end so that it overrides LABELs the Dockerfile
    sets itself and does not invalidate the build cache of earlier steps).

    The labels are ``labels`` plus the automatic labels in ``auto_labels``:
    ``build-date`` (now, UTC, ISO 8601), ``architecture`` (the engine's),
    ``vcs-type``/``vcs-url``/``vcs-ref`` (git sources only) and
    ``com.redhat.build-host`` (the engine's host name). A label given in ``labels``
    wins over an automatic one. Aliases (``aliases``: old name -> new name) work as
    in 1.6, one way: an old name set anywhere (base image, Dockerfile, this plugin)
    whose new name is set nowhere gives the new name its value; when both are set
    with different values both stay (with a warning). A label in ``dont_overwrite``
    that the Dockerfile or the base image already sets keeps its value, and so does
    one in ``dont_overwrite_if_in_dockerfile`` (default ``distribution-scope``) that
    the Dockerfile sets. Labels already set to the wanted value are not repeated.

    Result: :class:`AddedLabels`: the labels written, the labels kept because of
    ``dont_overwrite``, and the instruction appended.
    """

    key = "add_labels_in_dockerfile"
    is_allowed_to_fail = False

    def __init__(
        self,
        tasker: DockerTasker,
        workflow: DockerBuildWorkflow,
        labels: dict[str, str] | str = {},  # noqa: B006 (copied, never mutated)
        dont_overwrite: list[str] = ["Architecture", "architecture"],  # noqa: B006
        auto_labels: list[str] = list(AUTO_LABELS),  # noqa: B006
        aliases: dict[str, str] = dict(_dfedit.DEFAULT_LABEL_ALIASES),  # noqa: B006
        dont_overwrite_if_in_dockerfile: list[str] = ["distribution-scope"],  # noqa: B006
    ) -> None:
        """
        :param labels: labels to set (name -> value, or that object as a JSON string);
            they overwrite the Dockerfile's and the base image's unless listed in
            ``dont_overwrite``
        :param dont_overwrite: labels not to change when the Dockerfile or the base
            image already sets them
        :param auto_labels: automatic labels to add: build-date, architecture,
            vcs-type, vcs-url, vcs-ref, com.redhat.build-host (or an old alias name)
        :param aliases: old label name -> new label name: an old name set anywhere
            gives its value to the new name when that is set nowhere (as in 1.6)
        :param dont_overwrite_if_in_dockerfile: labels not to change when the
            Dockerfile itself sets them (1.6; default ``distribution-scope``)
        """
        super().__init__(tasker, workflow)
        labels = self._labels_from(labels)
        for name, value in labels.items():
            self._check("labels", name, f"label name {name!r}")
            self._check("labels", value, f"value of label {name!r}", allow_empty=True)
        for old, new in aliases.items():
            self._check("aliases", old, f"label name {old!r}")
            self._check("aliases", new, f"alias of {old!r}")
        for name in dont_overwrite:
            self._check("dont_overwrite", name, f"label name {name!r}")
        for name in dont_overwrite_if_in_dockerfile:
            self._check("dont_overwrite_if_in_dockerfile", name, f"label name {name!r}")
        self.dont_overwrite_if_in_dockerfile = list(dont_overwrite_if_in_dockerfile)
        self.labels = dict(labels)
        self.dont_overwrite = list(dont_overwrite)
        self.aliases = dict(aliases)
        known = set(AUTO_LABELS) | {old for old, new in self.aliases.items() if new in AUTO_LABELS}
        unknown = [name for name in auto_labels if name not in known]
        if unknown:
            raise PluginConfigError(
                f"plugin {self.key}: argument auto_labels: {unknown[0]!r} is not an automatic "
                f"label (known: {', '.join(AUTO_LABELS)})", plugin=self.key,
                argument="auto_labels")
        self.auto_labels = list(auto_labels)

    def _labels_from(self, labels: dict[str, str] | str) -> dict[str, str]:
        if not isinstance(labels, str):
            return labels
        try:
            decoded = json.loads(labels)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in decoded.items()):
            raise PluginConfigError(
                f"plugin {self.key}: argument labels: a string must be a JSON object "
                "of strings", plugin=self.key, argument="labels")
        return decoded

    def _check(self, argument: str, text: str, what: str, allow_empty: bool = False) -> None:
        problem = "is empty" if not text and not allow_empty else None
        try:
            _dfedit.quote(text)
        except ValueError as exc:
            problem = str(exc)
        if problem:
            raise PluginConfigError(f"plugin {self.key}: argument {argument}: {what} {problem}",
                                    plugin=self.key, argument=argument)

    # -- automatic labels ------------------------------------------------------------
    def _architecture(self) -> str | None:
        """The platform the build targets, else the engine's own."""
        wanted = self.builder.build_options.platform
        arch = wanted.architecture if wanted is not None else \
            self.tasker.engine_host().platform.architecture
        return _ARCHITECTURES.get(arch, arch) or None

    def _generated(self) -> dict[str, str]:
        wanted = {self.aliases.get(name, name) for name in self.auto_labels}
        generated: dict[str, str] = {}
        if "build-date" in wanted:
            generated["build-date"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if "architecture" in wanted and getattr(self.workflow, "platforms", None):
            # one value per platform: the engine sets it on each platform's image
            labels = getattr(self.workflow, "platform_labels", None)
            if isinstance(labels, set):
                labels.add("architecture")
                labels.update(old for old, new in self.aliases.items()
                              if new == "architecture")
        elif "architecture" in wanted:
            arch = self._architecture()
            if arch:
                generated["architecture"] = arch
        if "com.redhat.build-host" in wanted:
            host = self.tasker.engine_host().name
            if host:
                generated["com.redhat.build-host"] = host
        if wanted & {"vcs-type", "vcs-url", "vcs-ref"}:
            vcs = self.workflow.source.get_vcs_info()
            if vcs is None:
                self.log.info("the source is not under version control: "
                              "no vcs-type, vcs-url, vcs-ref labels")
            else:
                generated.update({"vcs-type": vcs.vcs_type, "vcs-url": vcs.vcs_url,
                                  "vcs-ref": vcs.vcs_ref})
        result: dict[str, str] = {}
        for name in self.auto_labels:
            new = self.aliases.get(name, name)
            if new not in generated:
                if new == "architecture" and getattr(self.workflow, "platforms", None):
                    self.log.info("label %r: set on each platform's image", name)
                    continue
                self.log.warning("automatic label %r is not available", name)
                continue
            try:
                _dfedit.quote(generated[new])
            except ValueError:
                self.log.warning("automatic label %r: value unusable in a Dockerfile; skipped",
                                 name)
                continue
            result[name] = generated[new]
        return result

    # -- aliases -----------------------------------------------------------------------
    def _apply_aliases(self, wanted: dict[str, str], base: Mapping[str, str],
                       dockerfile: Mapping[str, str]) -> None:
        """As 1.6: an old name set anywhere (base image, Dockerfile, this plugin) whose
        new name is set nowhere gives the new name its value; when both are set with
        different values both stay, with a warning. Never new -> old."""
        every = {**base, **dockerfile, **wanted}
        for old, new in self.aliases.items():
            if old not in every:
                continue
            if new not in every:
                self.log.info("setting label %r as an alias of %r", new, old)
                wanted[new] = every[new] = every[old]
            elif every[old] != every[new]:
                self.log.warning("labels %r=%r and %r=%r (aliases) differ; keeping both",
                                 old, every[old], new, every[new])

    def _keep_protected(self, wanted: dict[str, str], current: Mapping[str, str],
                        dockerfile: Mapping[str, str], kept: dict[str, str]) -> None:
        for name in list(wanted):
            if name in self.dont_overwrite_if_in_dockerfile and name in dockerfile \
                    and dockerfile[name] != wanted[name]:
                self.log.info("not overwriting label %r=%r set by the Dockerfile "
                              "(dont_overwrite_if_in_dockerfile)", name, dockerfile[name])
                kept[name] = dockerfile[name]
                del wanted[name]
                continue
            if name in self.dont_overwrite and name in current and current[name] != wanted[name]:
                where = "the Dockerfile" if name in dockerfile else "the base image"
                self.log.info("not overwriting label %r=%r set by %s (dont_overwrite)",
                              name, current[name], where)
                kept[name] = current[name]
                del wanted[name]

    # -- running ---------------------------------------------------------------------
    def run(self) -> AddedLabels:
        builder = self.builder
        base = _dfedit.base_image_config(builder, self.key)
        dockerfile = _dfedit.final_stage_labels(builder.df_path, builder.buildargs, base.env)
        current = {**base.labels, **dockerfile}

        wanted = self._generated()
        for name in wanted:
            if name in self.labels:
                self.log.info("label %r is set explicitly, not using the automatic value", name)
        wanted.update(self.labels)

        # protected labels first, so that their aliases follow the value that stays
        kept: dict[str, str] = {}
        self._keep_protected(wanted, current, dockerfile, kept)
        self._apply_aliases(wanted, base.labels, dockerfile)
        self._keep_protected(wanted, current, dockerfile, kept)

        to_set: dict[str, str] = {}
        for name, value in wanted.items():
            if current.get(name) == value:
                self.log.debug("label %r is already %r", name, value)
                continue
            to_set[name] = value

        if not to_set:
            self.log.info("no labels to add")
            return AddedLabels(labels={}, kept=kept)
        text = _dfedit.read(builder.df_path)
        instruction = _dfedit.label_instruction(to_set, _dfedit.escape_token(text))
        _dfedit.append_lines(builder.df_path, [instruction])
        self.log.info("added %s", instruction)
        return AddedLabels(labels=to_set, kept=kept, instruction=instruction)
