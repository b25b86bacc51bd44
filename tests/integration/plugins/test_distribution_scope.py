"""distribution_scope against a real parent image carrying the label."""

from __future__ import annotations

from pathlib import Path

import pytest

from atomic_reactor.core import DockerTasker
from tests.integration.plugins.dockerfile_helpers import (
    build,
    labels_of,
    push_parent,
    write_context,
)
from tests.support.env import BaseImage

KEY = "distribution_scope"


@pytest.fixture
def restricted_parent(tasker: DockerTasker, base_image: BaseImage) -> str:
    return push_parent(tasker, base_image, "FROM {base}\nLABEL distribution-scope=restricted\n")


def test_less_restrictive_scope_fails(tasker: DockerTasker, base_image: BaseImage,
                                      restricted_parent: str, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx",
                            f"FROM {restricted_parent}\nLABEL distribution-scope=public\n")
    results = build(base_image, context, [{"name": KEY}])
    assert results.is_failed()
    assert results.image_id is None
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert "distribution-scope=public is less restrictive than the parent image's " \
           "distribution-scope=restricted" in results.error["message"]


@pytest.mark.parametrize("scope", ["restricted", "authoritative-source-only", "private"])
def test_same_or_more_restrictive_scope_passes(
        tasker: DockerTasker, base_image: BaseImage, restricted_parent: str,
        tmp_path: Path, scope: str) -> None:
    context = write_context(tmp_path / "ctx",
                            f"FROM {restricted_parent}\nLABEL distribution-scope={scope}\n")
    results = build(base_image, context, [{"name": KEY}])
    assert not results.is_failed(), results.error
    assert results.plugin_results["prebuild"][KEY] == {
        "checked": True, "scope": scope, "parent_scope": "restricted", "reason": None}
    assert labels_of(tasker, str(results.image_id))["distribution-scope"] == scope


def test_scope_set_by_add_labels_is_checked(tasker: DockerTasker, base_image: BaseImage,
                                            restricted_parent: str, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {restricted_parent}\n")
    results = build(base_image, context, [
        {"name": "add_labels_in_dockerfile",
         "args": {"labels": {"distribution-scope": "public"}, "auto_labels": []}},
        {"name": KEY},
    ])
    assert results.is_failed()
    assert results.error is not None and results.error["plugin"] == KEY


def test_unset_scope_is_a_recorded_skip(tasker: DockerTasker, base_image: BaseImage,
                                        restricted_parent: str, tmp_path: Path) -> None:
    # the image inherits the parent's scope: nothing to compare
    context = write_context(tmp_path / "ctx", f"FROM {restricted_parent}\n")
    results = build(base_image, context, [{"name": KEY}])
    assert not results.is_failed(), results.error
    assert results.plugin_results["prebuild"][KEY] == {
        "checked": False, "scope": None, "parent_scope": "restricted",
        "reason": "the Dockerfile sets no distribution-scope label"}


def test_parent_without_scope_is_a_recorded_skip(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx",
                            f"FROM {base_image.repo}\nLABEL distribution-scope=public\n")
    results = build(base_image, context, [{"name": KEY}])
    assert not results.is_failed(), results.error
    result = results.plugin_results["prebuild"][KEY]
    assert result["checked"] is False
    assert result["scope"] == "public"
    assert result["reason"] == (f"the parent image {base_image.repo} has no "
                                "distribution-scope label")
