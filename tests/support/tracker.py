"""Removing what a test made in an engine: the engine-neutral part.

:class:`Tracker` records what an engine has (:meth:`~Tracker.snapshot`) and later
removes only what appeared since, plus what a test registered
(:meth:`~Tracker.cleanup`): containers first, then references (tags first, moved
tags put back), then images (children before parents). An engine's tracker
(:class:`tests.support.env.EngineTracker` for dockerd,
:class:`tests.support.buildah_env.BuildahTracker` for buildah's storage) lists its
objects (:meth:`~Tracker.state`) and removes one object at a time; the decisions
(what is new, what must be kept because removing it would delete an image that
existed before, what to put back) are made here, alike for every engine.

With ``exclusive`` the engine's inter-process lock (an
:class:`~tests.support.env.EngineLock`) is held from the snapshot to the clean-up,
so concurrent test sessions on this host cannot make their objects look like ours.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.env import EngineLock

__all__ = ["CleanupReport", "EngineSnapshot", "Gone", "RemovalFailed", "Tracker"]


@dataclass(frozen=True)
class EngineSnapshot:
    """Engine objects that existed at one point in time."""

    image_ids: frozenset[str]
    references: Mapping[str, str]
    """Tag and digest references (``repo:tag``, ``repo@sha256:...``) -> image id."""
    container_ids: frozenset[str]
    created: Mapping[str, int] = field(default_factory=dict, repr=False)
    """Image id -> creation time (seconds), used to remove children before parents."""

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(ref for ref in self.references if "@" not in ref)


#: seconds between the two clean-up passes (the second only when the first left some)
_SETTLE = 1.5


@dataclass
class CleanupReport:
    removed_containers: list[str] = field(default_factory=list)
    removed_references: list[str] = field(default_factory=list)
    restored_references: list[str] = field(default_factory=list)
    removed_images: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    """One line per object that could not (or deliberately was not) removed."""

    @property
    def ok(self) -> bool:
        return not self.leftovers

    def summary(self) -> str:
        return "; ".join(self.leftovers)


class Gone(Exception):
    """The object to remove is not there (any more), or someone else is removing it."""


class RemovalFailed(Exception):
    """The engine refused to remove (or re-tag) an object; the message says why."""


def short(object_id: str) -> str:
    return object_id.removeprefix("sha256:")[:12]


def is_image_id(ref: str) -> bool:
    value = ref.removeprefix("sha256:")
    return ref.startswith("sha256:") or (
        len(value) in (12, 64) and all(c in "0123456789abcdef" for c in value)
    )


def _removed(report: CleanupReport, label: str, change: Callable[[], None], *,
             gone_fails: bool = False) -> bool:
    """Make one change; whether it was made (a failure is noted as ``label``'s leftover;
    an object already gone is none, unless ``gone_fails``)."""
    try:
        change()
    except Gone as exc:
        if gone_fails:
            report.leftovers.append(f"{label}: {exc}")
        return False
    except RemovalFailed as exc:
        report.leftovers.append(f"{label}: {exc}")
        return False
    return True


class Tracker(ABC):
    """Remove the containers, references and images a test created in one engine.

    :meth:`snapshot` records what exists; :meth:`cleanup` removes (only) what
    appeared since then, plus anything registered with :meth:`track_image` /
    :meth:`track_container`.  ``protected`` references (and the images they point
    to) are never removed.  Subclasses list the engine (:meth:`state`), say how it
    spells a reference (:meth:`normalize`) and remove one object at a time, raising
    :class:`Gone` or :class:`RemovalFailed`.
    """

    def __init__(self, *, protected: Iterable[str], lock: EngineLock | None) -> None:
        self._lock = lock
        self._locked = False
        self.protected = frozenset(self.normalize(ref) for ref in protected)
        self._snapshot: EngineSnapshot | None = None
        self._tracked_refs: list[str] = []
        self._tracked_containers: list[str] = []

    # -- what an engine provides

    @abstractmethod
    def state(self) -> EngineSnapshot:
        """What the engine has right now."""

    @abstractmethod
    def normalize(self, ref: str) -> str:
        """``ref`` as the engine lists it in :attr:`EngineSnapshot.references`."""

    @abstractmethod
    def resolve(self, ref: str) -> str | None:
        """The id of the image ``ref`` (a reference or an image id) names now, if any."""

    @abstractmethod
    def remove_container(self, container_id: str) -> None:
        """Remove the container (forcibly, with its volumes)."""

    @abstractmethod
    def remove_reference(self, ref: str) -> None:
        """Remove the reference (the image goes with its last one, its parents stay)."""

    @abstractmethod
    def restore_reference(self, ref: str, image_id: str) -> None:
        """Point ``ref`` at ``image_id`` again."""

    @abstractmethod
    def remove_image(self, image_id: str) -> None:
        """Remove the image (not its parents); :class:`RemovalFailed` while it has children."""

    # -- the lock

    def close(self) -> None:
        """Release the engine lock if still held."""
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None and self._locked:
            self._locked = False
            self._lock.release()

    # -- recording

    @property
    def last_snapshot(self) -> EngineSnapshot | None:
        return self._snapshot

    def snapshot(self) -> EngineSnapshot:
        """Record the current engine state as the baseline for :meth:`cleanup`."""
        if self._lock is not None and not self._locked:
            self._lock.acquire()
            self._locked = True
        try:
            self._snapshot = self.state()
        except BaseException:
            self._unlock()
            raise
        return self._snapshot

    def track_image(self, ref: str) -> None:
        """Remove ``ref`` (a tag, digest reference or image id) and its image on cleanup."""
        self._tracked_refs.append(ref)

    def track_container(self, container_id: str) -> None:
        """Remove this container on cleanup even if it predates the snapshot."""
        self._tracked_containers.append(container_id)

    # -- removing

    def cleanup(self) -> CleanupReport:
        """Remove containers, then references, then images created since :meth:`snapshot`."""
        before = self._snapshot
        if before is None:
            raise RuntimeError(f"{type(self).__name__}.cleanup() called before snapshot()")
        report = CleanupReport()
        try:
            tracked_images = {ref: self.resolve(ref) for ref in self._tracked_refs}
            for attempt in range(2):
                if attempt:
                    # the engine may still be ending a cancelled build's own container
                    # (dockerd removes a legacy build's RUN container after its client
                    # went): a second pass, a moment later, over what is left
                    time.sleep(_SETTLE)
                    report = CleanupReport(report.removed_containers,
                                           report.removed_references,
                                           report.restored_references,
                                           report.removed_images)
                self._remove_containers(before, report)
                self._remove_references(before, report)
                self._remove_images(before, tracked_images, report)
                if report.ok:
                    break
        finally:
            self._tracked_refs.clear()
            self._tracked_containers.clear()
            self._snapshot = None
            self._unlock()
        return report

    def _remove_containers(self, before: EngineSnapshot, report: CleanupReport) -> None:
        now = self.state()
        targets = sorted(cid for cid in now.container_ids if cid not in before.container_ids)
        targets += [cid for cid in self._tracked_containers if cid not in targets]
        for cid in targets:
            if _removed(report, f"container {short(cid)}", partial(self.remove_container, cid)):
                report.removed_containers.append(cid)

    def _remove_references(self, before: EngineSnapshot, report: CleanupReport) -> None:
        now = self.state()
        doomed = {
            ref
            for ref in now.references
            if ref not in before.references and ref not in self.protected
        }
        explicitly_tracked = {
            self.normalize(ref) for ref in self._tracked_refs if not is_image_id(ref)
        }
        doomed |= explicitly_tracked - self.protected
        # A new reference on an image that existed before the snapshot: never let its
        # removal delete that image (the engine deletes an image with its last reference).
        keep: set[str] = set()
        for image_id in {now.references[ref] for ref in doomed if ref in now.references}:
            if image_id not in before.image_ids:
                continue
            refs = sorted(ref for ref, target in now.references.items() if target == image_id)
            remaining = [ref for ref in refs if ref not in doomed]
            candidates = [ref for ref in refs if ref in doomed and ref not in explicitly_tracked]
            if not remaining and candidates:
                tags = [ref for ref in candidates if "@" not in ref]
                kept = (tags or candidates)[0]
                keep.add(kept)
                report.leftovers.append(
                    f"reference {kept}: kept, removing it would delete image "
                    f"{short(image_id)} which existed before the test"
                )
        # Tags first: removing a repository's last tag also drops its digest references.
        for ref in sorted(doomed - keep, key=lambda r: ("@" in r, r)):
            if _removed(report, f"reference {ref}", partial(self.remove_reference, ref)):
                report.removed_references.append(ref)

        # Tags that existed before but were moved to another image: move them back.
        for ref, old_id in before.references.items():
            new_id = now.references.get(ref)
            if new_id is None or new_id == old_id or "@" in ref or ref in self.protected:
                continue
            if old_id not in now.image_ids:
                report.leftovers.append(
                    f"reference {ref}: now points to {short(new_id)}, its previous image "
                    f"{short(old_id)} is gone"
                )
                continue
            if _removed(report, f"reference {ref}: could not restore",
                        partial(self.restore_reference, ref, old_id), gone_fails=True):
                report.restored_references.append(ref)

    def _remove_images(
        self,
        before: EngineSnapshot,
        tracked: Mapping[str, str | None],
        report: CleanupReport,
    ) -> None:
        now = self.state()
        protected_ids = {
            state.references[ref]
            for state in (before, now)
            for ref in self.protected
            if ref in state.references
        }
        pending = {image_id for image_id in now.image_ids if image_id not in before.image_ids}
        for ref, resolved in tracked.items():
            image_id = self.resolve(ref) if is_image_id(ref) else resolved
            if image_id is not None and image_id in now.image_ids:
                pending.add(image_id)
        pending -= protected_ids
        errors: dict[str, str] = {}
        # Children must go before their parents: newest first, and retry while progress
        # is made (creation times of pulled images say nothing about local parentage).
        while pending:
            progress = False
            for image_id in sorted(pending, key=lambda i: (-now.created.get(i, 0), i)):
                try:
                    self.remove_image(image_id)
                    report.removed_images.append(image_id)
                except Gone:
                    pass
                except RemovalFailed as exc:
                    errors[image_id] = str(exc)
                    continue
                pending.discard(image_id)
                errors.pop(image_id, None)
                progress = True
            if not progress:
                break
        for image_id in sorted(pending):
            report.leftovers.append(f"image {short(image_id)}: {errors.get(image_id, '?')}")
