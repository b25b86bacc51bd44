"""assert_labels through the real pipeline."""

from __future__ import annotations

from pathlib import Path

from atomic_reactor.core import DockerTasker
from tests.integration.plugins.dockerfile_helpers import (
    build,
    labels_of,
    push_parent,
    write_context,
)
from tests.support.env import BaseImage

KEY = "assert_labels"


def test_missing_labels_stop_the_build(tasker: DockerTasker, base_image: BaseImage,
                                       tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"""
        FROM {base_image.repo} AS builder
        LABEL version=1 release=1
        FROM {base_image.repo}
        LABEL name=app version=""
    """)
    results = build(base_image, context, [{"name": KEY}])
    assert results.is_failed()
    assert results.image_id is None                     # stopped before the build
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert results.error["exit_code"] == 2
    # the builder stage's labels do not count; an empty value is missing
    assert "labels version (empty), release" in results.error["message"]


def test_labels_from_parent_stage_chain_and_aliases_pass(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    parent = push_parent(tasker, base_image, "FROM {base}\nLABEL Name=from-parent\n")
    context = write_context(tmp_path / "ctx", f"""
        FROM {parent} AS common
        LABEL version=2
        FROM common
        LABEL com.example.x=y
    """)
    results = build(base_image, context, [
        # no aliases here, so that only the old names are set
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"Release": "5"},
                                                      "auto_labels": [], "aliases": {}}},
        {"name": KEY, "args": {"required_labels": ["name", "version", "release",
                                                   "com.example.x"]}},
    ])
    assert not results.is_failed(), results.error
    assert results.plugin_results["prebuild"][KEY] == {
        "labels": {"name": "from-parent", "version": "2", "release": "5", "com.example.x": "y"},
        "via_alias": {"name": "Name", "release": "Release"},
    }
    labels = labels_of(tasker, str(results.image_id))
    assert labels["Release"] == "5"
    assert "release" not in labels
