"""``distribution_scope``: an image may not be less restricted than its parent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor.errors import DockerfileError
from atomic_reactor.plugin import PreBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["SCOPES", "SCOPE_LABEL", "DistributionScopePlugin", "ScopeCheck"]

#: the label (see projectatomic/ContainerApplicationGenericLabels)
SCOPE_LABEL = "distribution-scope"
#: its values, most restrictive first
SCOPES = ("private", "authoritative-source-only", "restricted", "public")


@dataclass(frozen=True)
class ScopeCheck:
    """The outcome of the check."""

    #: was there something to compare (both scopes set and valid)?
    checked: bool
    #: the image's and the parent's distribution-scope (None: not set)
    scope: str | None
    parent_scope: str | None
    #: why nothing was compared (when not checked)
    reason: str | None = None


class DistributionScopePlugin(PreBuildPlugin):
    """Fail the build when the image's ``distribution-scope`` label is less
    restrictive than its parent image's. Scopes, most restrictive first: private,
    authoritative-source-only, restricted, public.

    The image's scope is the one its Dockerfile sets (final stage, stages it builds
    on included); the parent's is the base image's label. When either is not set
    (or not one of the four values, or the image is built ``FROM scratch``) there
    is nothing to compare: that is recorded and the build goes on.

    Result: :class:`ScopeCheck`: whether a comparison was made, both scopes, and
    the reason when none was.
    """

    key = "distribution_scope"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow) -> None:
        super().__init__(tasker, workflow)

    def _skip(self, scope: str | None, parent: str | None, reason: str) -> ScopeCheck:
        self.log.info("%s: no distribution scope check", reason)
        return ScopeCheck(checked=False, scope=scope, parent_scope=parent, reason=reason)

    def run(self) -> ScopeCheck:
        builder = self.builder
        base = _dfedit.base_image_config(builder, self.key)
        labels = _dfedit.final_stage_labels(builder.df_path, builder.buildargs, base.env)
        scope = labels.get(SCOPE_LABEL)
        parent = base.labels.get(SCOPE_LABEL)
        if scope is None:
            return self._skip(scope, parent, f"the Dockerfile sets no {SCOPE_LABEL} label")
        if base.image is None:
            return self._skip(scope, parent, "the image is built FROM scratch")
        if parent is None:
            return self._skip(scope, parent,
                              f"the parent image {base.image} has no {SCOPE_LABEL} label")
        for which, value in (("the image's", scope), ("the parent's", parent)):
            if value not in SCOPES:
                self.log.warning("%s %s=%r is not one of %s", which, SCOPE_LABEL, value,
                                 ", ".join(SCOPES))
                return self._skip(scope, parent, f"{which} {SCOPE_LABEL} {value!r} is unknown")
        if SCOPES.index(scope) > SCOPES.index(parent):
            raise DockerfileError(
                f"{self.key}: {SCOPE_LABEL}={scope} is less restrictive than the parent "
                f"image's {SCOPE_LABEL}={parent} ({base.image}); use {parent} or one of the "
                f"more restrictive scopes ({', '.join(SCOPES[:SCOPES.index(parent)]) or 'none'})")
        self.log.info("%s=%s is allowed under the parent's %s", SCOPE_LABEL, scope, parent)
        return ScopeCheck(checked=True, scope=scope, parent_scope=parent)
