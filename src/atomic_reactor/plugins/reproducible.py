"""``reproducible``: make the built image depend only on the source commit."""

from __future__ import annotations

import shutil
import tempfile
from typing import TYPE_CHECKING

from atomic_reactor._image.normalize import NormalizedImage, normalize_image
from atomic_reactor.errors import AtomicReactorError, EngineError, PluginConfigError
from atomic_reactor.plugin import PostBuildPlugin

if TYPE_CHECKING:
    from atomic_reactor.core import DockerTasker
    from atomic_reactor.inner import DockerBuildWorkflow

__all__ = ["ReproduciblePlugin"]


class ReproduciblePlugin(PostBuildPlugin):
    """Rewrite the layers the build added, and the image config, so that two builds of
    one commit give the same image (and so the same manifest digest when pushed).

    Every file time in the new layers is clamped to ``SOURCE_DATE_EPOCH`` (the source
    commit's committer time unless given), members are written in path order with
    empty user/group names and without access/change times, the config's ``created``
    and history times are the epoch, and the build-container fields the engine
    recorded are dropped. The base image's layers are kept as they are. The image is
    loaded back into the engine under the build's name. It runs first among the
    post-build plugins (``reproducible: true`` in a request puts it there).

    Result: a :class:`~atomic_reactor._image.normalize.NormalizedImage`.
    """

    key = "reproducible"
    is_allowed_to_fail = False

    def __init__(self, tasker: DockerTasker, workflow: DockerBuildWorkflow,
                 source_date_epoch: int | None = None,
                 keep_original: bool | None = None) -> None:
        """
        :param source_date_epoch: the time to stamp (default: the build's
            ``SOURCE_DATE_EPOCH``, the source commit's time)
        :param keep_original: keep the image as built too (default: only when the
            build used the engine's cache, whose layers it is)
        """
        super().__init__(tasker, workflow)
        if source_date_epoch is not None and source_date_epoch < 0:
            raise PluginConfigError(f"plugin {self.key}: source_date_epoch must be 0 or more",
                                    plugin=self.key, argument="source_date_epoch")
        self.epoch = source_date_epoch
        self.keep_original = keep_original

    def _epoch(self) -> int:
        if self.epoch is not None:
            return self.epoch
        epoch = getattr(self.workflow, "source_date_epoch", None)
        if epoch is None:
            epoch = self.workflow.source.source_date_epoch()
        if epoch is None:
            raise PluginConfigError(f"plugin {self.key}: no SOURCE_DATE_EPOCH: the source "
                                    "is not a git commit; give source_date_epoch",
                                    plugin=self.key, argument="source_date_epoch")
        return int(epoch)

    def _base_diff_ids(self) -> list[str]:
        base = self.builder.base_image
        if base is None:  # FROM scratch: every layer is new
            return []
        return list(self.tasker.image_info(base).layers)

    def run(self) -> NormalizedImage:
        epoch = self._epoch()
        original = self.image_id
        name = str(self.workflow.image.with_default_tag())  # archives need tagged names
        scratch = tempfile.mkdtemp(prefix="reproducible-", dir=self.workflow.workdir or None)
        try:
            result = normalize_image(self.tasker.save_image_stream, self.tasker.load_image,
                                     original, [name], base_diff_ids=self._base_diff_ids(),
                                     epoch=epoch, scratch_dir=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        actual = self.tasker.image_info(name).id
        if actual != result.image_id:
            raise EngineError(f"plugin {self.key}: after loading, {name} is {actual}, not the "
                              f"normalised image {result.image_id}")
        self.builder.set_image_id(result.image_id)
        keep = self.keep_original if self.keep_original is not None else self.workflow.use_cache
        if result.image_id != original and not keep:
            try:
                self.tasker.remove_image(original)
            except AtomicReactorError as exc:
                self.log.debug("could not remove the image as built (%s): %s", original, exc)
        self.log.info("reproducible image %s (SOURCE_DATE_EPOCH %d, %d layers rewritten)",
                      result.image_id, epoch, result.rewritten_layers)
        return result
