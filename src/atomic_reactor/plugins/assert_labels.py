"""``assert_labels``: stop the build when the image would lack required labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor.errors import DockerfileError, PluginConfigError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["AssertLabelsPlugin", "AssertedLabels"]


@dataclass(frozen=True)
class AssertedLabels:
    """The required labels and where their values come from."""

    #: required label -> its value
    labels: dict[str, str]
    #: required label -> the label name that holds it, when that is an alias
    #: (``{"name": "Name"}``)
    via_alias: dict[str, str]


class AssertLabelsPlugin(PreBuildPlugin):
    """Fail the build when a required label is missing (or empty) on the image.

    The labels checked are the final stage's (LABELs in the Dockerfile, stages it
    builds on included) plus those inherited from the base image; a label is also
    present when one of its alias names is (``Name`` for ``name``, … as in
    ``add_labels_in_dockerfile``). Run it after the plugins that add labels.

    Result: :class:`AssertedLabels`: each required label's value, and which alias
    name provided it when not the label itself.
    """

    key = "assert_labels"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 required_labels: list[str] = ["name", "version", "release"],  # noqa: B006
                 ) -> None:
        """
        :param required_labels: labels the image must have
        """
        super().__init__(tasker, workflow)
        if any(not label.strip() for label in required_labels):
            raise PluginConfigError(
                f"plugin {self.key}: argument required_labels: a label name is empty",
                plugin=self.key, argument="required_labels")
        self.required_labels = list(dict.fromkeys(required_labels))

    def run(self) -> AssertedLabels:
        builder = self.builder
        base = _dfedit.base_image_config(builder, self.key)
        labels = {**base.labels,
                  **_dfedit.final_stage_labels(builder.df_path, builder.buildargs, base.env)}
        found: dict[str, str] = {}
        via: dict[str, str] = {}
        missing: list[str] = []
        for label in self.required_labels:
            hit = _dfedit.preferred_label(labels, label)
            if hit is None:
                empty = label in labels
                missing.append(f"{label} (empty)" if empty else label)
                continue
            name, value = hit
            found[label] = value
            if name != label:
                via[label] = name
        if missing:
            raise DockerfileError(
                f"{self.key}: the image would lack the required "
                f"label{'s' if len(missing) > 1 else ''} {', '.join(missing)}; set "
                f"{'them' if len(missing) > 1 else 'it'} with LABEL in the Dockerfile's final "
                "stage (or with add_labels_in_dockerfile before assert_labels)")
        self.log.info("required labels present: %s", ", ".join(self.required_labels))
        return AssertedLabels(labels=found, via_alias=via)
