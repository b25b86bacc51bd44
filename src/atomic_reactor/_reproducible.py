"""``--check-reproducible``: build twice and say whether the two images are the same.

Both builds are reproducible builds (:mod:`atomic_reactor.plugins.reproducible`)
without the engine's cache, the second started ``delay`` seconds after the first
ended, so anything that depends on the time shows. They run the pre-build and
pre-publish plugins of the request; nothing is pushed and no post-build plugin other
than ``reproducible`` nor any exit plugin runs. The two images are then compared
file by file (:mod:`atomic_reactor._image.compare`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atomic_reactor._image.compare import DEFAULT_LIMIT, ImageComparison, compare_images
from atomic_reactor._request import BuildRequest
from atomic_reactor._results import BuildResults
from atomic_reactor.errors import AtomicReactorError, NotReproducible

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_DELAY", "ReproducibilityCheck", "check_reproducible"]

#: seconds between the two builds (file times have whole seconds)
DEFAULT_DELAY = 2.0


@dataclass(frozen=True)
class ReproducibilityCheck:
    """The two builds' results and how their images compare."""

    first: BuildResults
    second: BuildResults
    comparison: ImageComparison

    @property
    def identical(self) -> bool:
        return self.comparison.identical

    def results(self) -> BuildResults:
        """The second build's results, with the comparison in ``reproducibility``."""
        return self.second.replace(reproducibility=self.comparison.to_dict())

    def raise_for_status(self) -> None:
        if not self.identical:
            layers = len(self.comparison.layers)
            fields = len(self.comparison.config)
            raise NotReproducible(
                f"two builds of {self.second.image} differ: {layers} layer(s) and "
                f"{fields} config field(s)")


def _check_kwargs(request: BuildRequest) -> dict[str, Any]:
    kwargs = request.workflow_kwargs()
    kwargs["reproducible"] = True
    kwargs["use_cache"] = False

    def named(item: Any, name: str) -> bool:
        return isinstance(item, Mapping) and item.get("name") == name

    postbuild = [item for item in kwargs.get("postbuild_plugins") or []
                 if named(item, "reproducible")]
    kwargs["postbuild_plugins"] = postbuild or [{"name": "reproducible", "args": {}}]
    kwargs["exit_plugins"] = []
    return kwargs


def check_reproducible(request: BuildRequest, *, delay: float = DEFAULT_DELAY,
                       limit: int = DEFAULT_LIMIT, tasker: DockerTasker | None = None
                       ) -> ReproducibilityCheck:
    """Build ``request`` twice and compare the images.

    A failing build raises its error (nothing is compared); the result says whether
    the images are identical (:meth:`ReproducibilityCheck.raise_for_status`).
    """
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

    kwargs = _check_kwargs(request)
    owns = tasker is None
    if tasker is None:
        from atomic_reactor._engine.select import choose_engine

        tasker = DockerTasker(retry=None, engine=choose_engine(kwargs.get("engine")))
    try:
        builds: list[BuildResults] = []
        for attempt in (1, 2):
            if attempt == 2 and delay > 0:
                logger.info("waiting %.1f s before the second build", delay)
                time.sleep(delay)
            logger.info("reproducibility check: build %d of 2", attempt)
            results = DockerBuildWorkflow(**kwargs, tasker=tasker).build_container_image()
            results.raise_for_status()
            if not results.image_id:
                raise AtomicReactorError(f"build {attempt} of the check produced no image")
            builds.append(results)
        first_id, second_id = str(builds[0].image_id), str(builds[1].image_id)
        scratch = tempfile.mkdtemp(prefix="atomic-reactor-check-")
        try:
            comparison = compare_images(tasker.read_image_stream, first_id, second_id,
                                        scratch_dir=scratch, limit=limit)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if first_id != second_id:  # the first image lost its name to the second
                try:
                    tasker.remove_image(first_id)
                except AtomicReactorError as exc:
                    logger.debug("could not remove the first build's image: %s", exc)
    finally:
        if owns:
            tasker.close()
    return ReproducibilityCheck(builds[0], builds[1], comparison)
