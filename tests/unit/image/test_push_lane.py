"""The push's lane (one per registry: early uploads, each registry's part of the push):
jobs in order in a thread of its own, never waited for after a failure, and a last job
(closing a client) run once the job a registry holds is over."""

from __future__ import annotations

import threading

from atomic_reactor._image.push import _Lane


def test_a_closed_lane_runs_its_last_job_after_the_held_one() -> None:
    release = threading.Event()
    order: list[str] = []
    closed = threading.Event()

    def held() -> None:
        release.wait(10)
        order.append("upload")

    def close_client() -> None:
        order.append("close")
        closed.set()

    lane = _Lane("test-lane")
    upload = lane.submit(held)
    lane.submit(close_client)
    lane.close(wait=False)  # a failed push: returns while the upload is held
    assert order == [] and not closed.is_set()
    release.set()
    assert closed.wait(10)
    assert order == ["upload", "close"]
    assert upload.done()


def test_a_cancelled_job_is_skipped_and_the_close_still_runs() -> None:
    release = threading.Event()
    ran: list[str] = []
    lane = _Lane("test-lane")
    lane.submit(lambda: release.wait(10))
    queued = lane.submit(lambda: ran.append("queued upload"))
    done = lane.submit(lambda: ran.append("close"))
    assert queued.cancel()
    lane.close(wait=False)
    release.set()
    done.result(10)
    assert ran == ["close"]
