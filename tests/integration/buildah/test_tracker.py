"""BuildahTracker against real buildah storage: it removes what appeared, nothing else."""

from __future__ import annotations

from tests.integration.helpers import unique
from tests.support.buildah_env import BuildahTracker, buildah
from tests.support.env import BASE_IMAGE, BaseImage


def test_buildah_tracker_removes_only_new_objects(base_image: BaseImage) -> None:
    tracker = BuildahTracker(protected=[BASE_IMAGE])
    before = tracker.snapshot()
    base_id = before.references[f"localhost/{BASE_IMAGE}"]
    tag = f"localhost/{unique('tracked')}:v1"
    buildah("tag", f"localhost/{BASE_IMAGE}", tag)
    container = buildah("from", "--pull=false", f"localhost/{BASE_IMAGE}").strip()
    container_id = next(c for c in tracker.state().container_ids
                        if c not in before.container_ids)
    committed_name = f"localhost/{unique('committed')}:v1"
    committed = buildah("commit", "-q", container, committed_name).strip()
    dangling = buildah("commit", "-q", container).strip()

    report = tracker.cleanup()

    assert report.ok, report.summary()
    assert container_id in report.removed_containers
    assert tag in report.removed_references and committed_name in report.removed_references
    after = BuildahTracker(exclusive=False).state()
    assert container_id not in after.container_ids
    assert committed.removeprefix("sha256:") not in after.image_ids
    assert dangling.removeprefix("sha256:") not in after.image_ids
    assert tag not in after.references
    assert base_id in after.image_ids
    assert before.image_ids <= after.image_ids
    assert before.container_ids <= after.container_ids
