"""``tag_and_push``: push every name of the built image to every target registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atomic_reactor._locks import name_lock
from atomic_reactor._reference import ImageName
from atomic_reactor._results import PushedImage
from atomic_reactor.errors import AtomicReactorError
from atomic_reactor.plugin import REGISTRIES_ARG_SCHEMA, PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["TagAndPushPlugin"]


class TagAndPushPlugin(PostBuildPlugin):
    """Tag the built image for each registry and push it.

    ``registries`` maps ``host[:port]`` to ``{"insecure": bool, "secret": path}``;
    ``secret`` is a directory (or file) with docker credentials for that registry,
    otherwise the docker config docker itself would use is read. The names pushed
    are the workflow's image plus every name in ``workflow.tag_conf``.

    Result: a list of :class:`~atomic_reactor._results.PushedImage` (registry,
    reference, manifest digest, size, attempts).
    """

    key = "tag_and_push"
    is_allowed_to_fail = False
    args_schema = {
        "type": "object",
        "properties": {
            "registries": REGISTRIES_ARG_SCHEMA,
        },
        "required": ["registries"],
        "additionalProperties": False,
    }

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 registries: dict[str, dict[str, Any]]) -> None:
        """
        :param registries: registry (``host[:port]``) -> ``{"insecure": bool, "secret":
            path}``; every name of the image is pushed to each
        """
        super().__init__(tasker, workflow)
        self.registries = registries

    def _names(self) -> list[ImageName]:
        names: list[ImageName] = []
        for image in [self.workflow.image, *self.workflow.tag_conf.images]:
            local = image.copy(registry=None)
            if local not in names:
                names.append(local)
        return names

    def _untag(self, target: ImageName) -> None:
        """Drop the registry name a failed push leaves (the built image stays)."""
        try:
            self.tasker.remove_image(target, noprune=True)
        except AtomicReactorError as exc:
            self.log.debug("could not remove tag %s: %s", target, exc)

    def run(self) -> list[PushedImage]:
        image_id = self.image_id
        pushed: list[PushedImage] = []
        for registry, settings in self.registries.items():
            conf = settings or {}
            for name in self._names():
                target = name.copy(registry=registry)
                with name_lock(str(target)):
                    self.tasker.tag_image(image_id, target, force=True)
                    try:
                        result = self.tasker.push(target, insecure=bool(conf.get("insecure")),
                                                  dockercfg=conf.get("secret"))
                    except AtomicReactorError:
                        self._untag(target)
                        raise
                record = PushedImage(registry=registry, image=str(target), digest=result.digest,
                                     size=result.size, attempts=result.attempts)
                self.log.info("pushed %s (%s)", target, result.digest)
                self.workflow.record_push(record)
                pushed.append(record)
        return pushed
