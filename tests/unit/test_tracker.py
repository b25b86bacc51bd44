"""tests/support/tracker.py: what the engine trackers remove, keep and put back.

The decisions are engine-neutral; here they run over an engine kept in a dict (the
real docker and buildah trackers are exercised by the integration tests, whose every
test is cleaned up by one, and by test_env_smoke / buildah/test_tracker)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.support.tracker import EngineSnapshot, Gone, RemovalFailed, Tracker


class DictTracker(Tracker):
    """An engine of images (id -> parent), references and containers, in memory."""

    def __init__(self, protected: Iterable[str] = ()) -> None:
        self.parents: dict[str, str | None] = {}
        self.refs: dict[str, str] = {}
        self.containers: set[str] = set()
        self.removed: list[str] = []
        super().__init__(protected=protected, lock=None)

    def image(self, image_id: str, parent: str | None = None, *refs: str) -> None:
        self.parents[image_id] = parent
        self.refs.update(dict.fromkeys(refs, image_id))

    def state(self) -> EngineSnapshot:
        return EngineSnapshot(frozenset(self.parents), dict(self.refs),
                              frozenset(self.containers))

    def normalize(self, ref: str) -> str:
        return ref if ":" in ref else f"{ref}:latest"

    def resolve(self, ref: str) -> str | None:
        return ref if ref in self.parents else self.refs.get(self.normalize(ref))

    def remove_container(self, container_id: str) -> None:
        if container_id not in self.containers:
            raise Gone(container_id)
        self.containers.discard(container_id)

    def remove_reference(self, ref: str) -> None:
        image = self.refs.pop(ref, None)
        if image is None:
            raise Gone(ref)
        if image not in self.refs.values():  # the last reference: the image goes too
            self.parents.pop(image)
        self.removed.append(ref)

    def restore_reference(self, ref: str, image_id: str) -> None:
        self.refs[ref] = image_id

    def remove_image(self, image_id: str) -> None:
        if image_id not in self.parents:
            raise Gone(image_id)
        if image_id in self.parents.values():
            raise RemovalFailed("image has dependent child images")
        if image_id in self.refs.values():
            raise RemovalFailed("image is referenced")
        self.parents.pop(image_id)
        self.removed.append(image_id)


@pytest.fixture
def engine() -> DictTracker:
    engine = DictTracker(protected=["base"])
    engine.image("b", None, "base:latest")
    engine.image("old", "b", "old:1", "shared:1")
    engine.containers.add("c0")
    return engine


def test_only_what_appeared_is_removed(engine: DictTracker) -> None:
    engine.snapshot()
    engine.image("n1", "b")
    engine.image("n2", "n1", "new:1")  # a child: it has to go before its parent
    engine.containers.add("c1")
    report = engine.cleanup()
    assert report.ok, report.summary()
    assert report.removed_containers == ["c1"] and engine.containers == {"c0"}
    assert set(engine.parents) == {"b", "old"}
    assert engine.refs == {"base:latest": "b", "old:1": "old", "shared:1": "old"}


def test_a_new_name_on_an_old_image_is_kept_when_it_is_the_last_name(
        engine: DictTracker) -> None:
    engine.snapshot()
    del engine.refs["old:1"], engine.refs["shared:1"]  # (by hand, not by the tracker)
    engine.refs["new:1"] = engine.refs["new:2"] = "old"  # now old's only names
    report = engine.cleanup()
    assert "old" in engine.parents and engine.refs.get("new:1") == "old"
    assert "new:2" not in engine.refs
    assert report.leftovers == ["reference new:1: kept, removing it would delete image old "
                                "which existed before the test"]


def test_moved_tags_are_put_back_and_tracked_objects_removed(engine: DictTracker) -> None:
    engine.snapshot()
    engine.image("n1", "b", "old:1")        # old:1 moved to a new image
    engine.track_image("shared")            # -> shared:latest, not there: nothing to do
    engine.track_container("c0")            # predates the snapshot, removed all the same
    report = engine.cleanup()
    assert report.ok, report.summary()
    assert engine.refs["old:1"] == "old" and "n1" not in engine.parents
    assert report.restored_references == ["old:1"] and engine.containers == set()


def test_protected_images_stay_even_when_tracked(engine: DictTracker) -> None:
    engine.snapshot()
    engine.track_image("b")
    assert engine.cleanup().ok
    assert "b" in engine.parents and engine.refs["base:latest"] == "b"


def test_what_cannot_be_removed_is_a_leftover(engine: DictTracker) -> None:
    engine.snapshot()
    engine.image("n1", "old")
    engine.image("stuck", "n1")
    engine.parents["blocker"] = "stuck"     # appears as new, but removal keeps failing
    engine.remove_image = lambda image_id: (_ for _ in ()).throw(  # type: ignore[method-assign]
        RemovalFailed("in use"))
    report = engine.cleanup()
    assert not report.ok
    assert sorted(report.leftovers) == ["image blocker: in use", "image n1: in use",
                                        "image stuck: in use"]


def test_cleanup_needs_a_snapshot(engine: DictTracker) -> None:
    with pytest.raises(RuntimeError, match=r"DictTracker.cleanup\(\) called before"):
        engine.cleanup()
