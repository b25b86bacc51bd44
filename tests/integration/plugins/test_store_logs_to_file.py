"""``store_logs_to_file`` after real builds: succeeded and failed."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from atomic_reactor.api import build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage

KEY = "store_logs_to_file"


def _build(tmp_path: Path, base_image: BaseImage, run: str, file_path: Path) -> Any:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN {run}
        """)
    return build_image_here(
        source=path_source(context),
        image=unique("art-test-logs"),
        parent_registry=base_image.registry.address,
        postbuild_plugins=[{"name": "all_rpm_packages"}],
        exit_plugins=[{"name": KEY, "args": {"file_path": str(file_path)}}],
    )


def test_results_of_a_successful_build(tmp_path: Path, base_image: BaseImage) -> None:
    target = tmp_path / "out" / "nested" / "results.json"  # parents do not exist yet
    results = _build(tmp_path, base_image, "echo from-the-run-step > /marker", target)
    assert not results.is_failed(), results.error

    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]  # no temp file left
    stored = json.loads(target.read_text())
    assert stored["image_id"] == results.image_id
    assert stored["failed"] is False
    assert any("from-the-run-step" in line for line in stored["build_logs"])
    pulled = stored["prebuild_plugins"]["pull_base_image"]
    assert pulled[0]["pulled_from"] == base_image.pushed
    assert pulled[0]["image_id"] == base_image.image_id
    assert stored["postbuild_plugins"]["all_rpm_packages"]["skipped"]
    assert stored["prepublish_plugins"] == {}
    assert "docker_build" in stored["plugins_durations"]
    outcome = results.plugin_results["exit"][KEY]
    assert outcome == {"path": str(target), "size": target.stat().st_size}


def test_results_of_a_failed_build(tmp_path: Path, base_image: BaseImage) -> None:
    target = tmp_path / "results.json"
    results = _build(tmp_path, base_image, "echo about-to-fail && false", target)
    assert results.is_failed()

    stored = json.loads(target.read_text())
    assert stored["failed"] is True
    assert stored["image_id"] is None
    assert stored["error"]["type"] == "BuildFailed"
    assert any("about-to-fail" in line for line in stored["build_logs"])
    assert stored["postbuild_plugins"] == {}  # the build failed before post-build
    assert stored["prebuild_plugins"]["pull_base_image"][0]["image_id"] == base_image.image_id
    assert "docker_build" in stored["plugins_errors"]
