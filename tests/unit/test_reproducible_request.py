"""Requests for reproducible builds, SBOMs and provenance: validation and plugin lists."""

from __future__ import annotations

import pytest

from atomic_reactor._request import BuildRequest
from atomic_reactor.cli.main import build_parser
from atomic_reactor.errors import BuildJsonError

BASE = {"source": {"provider": "path", "uri": "file:///src"}, "image": "app:1",
        "target_registries": ["127.0.0.1:5000"]}


def _names(plugins: list[dict[str, object]]) -> list[object]:
    return [p["name"] for p in plugins]


def test_reproducible_runs_first_after_the_build_and_attachments_after_the_push() -> None:
    request = BuildRequest.from_mapping({
        **BASE, "reproducible": True, "source_date_epoch": 1700000000, "sbom": True,
        "provenance": True,
        "postbuild_plugins": [{"name": "tag_by_labels"}]})
    lists = request.plugin_lists()
    assert _names(lists["postbuild_plugins"]) == ["reproducible", "tag_by_labels",
                                                  "tag_and_push", "sbom", "provenance"]
    kwargs = request.workflow_kwargs()
    assert kwargs["reproducible"] is True and kwargs["source_date_epoch"] == 1700000000
    again = BuildRequest.from_mapping(request.to_dict())
    assert again.plugin_lists() == lists


def test_a_listed_plugin_request_wins() -> None:
    request = BuildRequest.from_mapping({
        **BASE, "reproducible": True,
        "postbuild_plugins": [{"name": "reproducible", "args": {"source_date_epoch": 5}}]})
    assert request.plugin_lists()["postbuild_plugins"][0] == {
        "name": "reproducible", "args": {"source_date_epoch": 5}}


@pytest.mark.parametrize("value", [-1, "1700000000", 1.5, True, 10**20])
def test_source_date_epoch_must_be_whole_seconds(value: object) -> None:
    with pytest.raises(BuildJsonError, match="source_date_epoch"):
        BuildRequest.from_mapping({**BASE, "source_date_epoch": value})


@pytest.mark.parametrize("key", ["reproducible", "sbom", "provenance"])
def test_flags_must_be_booleans(key: str) -> None:
    with pytest.raises(BuildJsonError, match=key):
        BuildRequest.from_mapping({**BASE, key: "yes"})


def test_command_line_options() -> None:
    args = build_parser().parse_args([
        "build", "git", "--uri", "u", "--image", "i", "--check-reproducible",
        "--check-delay", "3", "--source-date-epoch", "42", "--sbom", "--no-cache"])
    assert (args.check_reproducible, args.check_delay, args.source_date_epoch, args.sbom,
            args.no_cache, args.provenance) == (True, 3.0, 42, True, True, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["build", "git", "--uri", "u", "--image", "i",
                                   "--source-date-epoch", "yesterday"])
