"""Engine objects a test leaves behind fail it (tests/support/env.py, used by the
integration suite's autouse ``engine_cleanup`` fixture for docker and buildah)."""

from __future__ import annotations

import inspect

import pytest

from tests.support.env import CleanupReport, EngineLeftoversError, fail_on_leftovers


def test_leftovers_fail_the_test() -> None:
    report = CleanupReport(leftovers=["image 0123456789ab: image is being used by container"])
    with pytest.raises(EngineLeftoversError,
                       match=r"tests/x.py::t: left behind .*: image 0123456789ab: image is"):
        fail_on_leftovers(report, "tests/x.py::t")
    assert issubclass(EngineLeftoversError, AssertionError)  # reported as a failure


def test_a_clean_engine_passes() -> None:
    fail_on_leftovers(CleanupReport(removed_images=["sha256:1"]), "tests/x.py::t")


def test_the_integration_fixture_fails_on_leftovers() -> None:
    from tests.integration import conftest

    source = inspect.getsource(conftest.engine_cleanup)
    # one tracker for the engine under test (docker or buildah), its report checked
    assert "EngineTracker(" in source and "BuildahTracker(" in source
    assert source.count("fail_on_leftovers(tracker.cleanup()") == 1
    assert "warn" not in source.replace("EngineLeftoversError", "")
