"""distribution_scope without an engine: the comparison and what is not compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from atomic_reactor.errors import DockerfileError
from atomic_reactor.plugins.distribution_scope import SCOPES, DistributionScopePlugin, ScopeCheck
from tests.unit.plugins.dockerfile_fakes import fake_tasker, image, make_workflow


def _run(tmp_path: Path, df: str, parent: dict[str, str] | None) -> ScopeCheck:
    workflow = make_workflow(tmp_path, df, tasker=fake_tasker({"p:1": image("sha256:p", parent)}))
    return DistributionScopePlugin(workflow.tasker, workflow).run()


@pytest.mark.parametrize("parent", SCOPES)
@pytest.mark.parametrize("scope", SCOPES)
def test_matrix(tmp_path: Path, scope: str, parent: str) -> None:
    df = f"FROM p:1\nLABEL distribution-scope={scope}\n"
    if SCOPES.index(scope) > SCOPES.index(parent):
        with pytest.raises(DockerfileError, match=f"distribution-scope={scope} is less "
                                                  f"restrictive than the parent"):
            _run(tmp_path, df, {"distribution-scope": parent})
    else:
        assert _run(tmp_path, df, {"distribution-scope": parent}) == ScopeCheck(
            checked=True, scope=scope, parent_scope=parent)


@pytest.mark.parametrize(("df", "parent", "reason"), [
    ("FROM p:1\n", {"distribution-scope": "private"},
     "the Dockerfile sets no distribution-scope label"),
    ("FROM p:1\nLABEL distribution-scope=public\n", None,
     "the parent image p:1 has no distribution-scope label"),
    ("FROM scratch\nLABEL distribution-scope=public\n", None,
     "the image is built FROM scratch"),
    ("FROM p:1\nLABEL distribution-scope=world\n", {"distribution-scope": "private"},
     "the image's distribution-scope 'world' is unknown"),
    ("FROM p:1\nLABEL distribution-scope=public\n", {"distribution-scope": "Private"},
     "the parent's distribution-scope 'Private' is unknown"),
])
def test_nothing_to_check(tmp_path: Path, df: str, parent: dict[str, str] | None,
                          reason: str) -> None:
    result = _run(tmp_path, df, parent)
    assert result.checked is False
    assert result.reason == reason


def test_scope_from_an_earlier_stage(tmp_path: Path) -> None:
    df = "FROM p:1 AS base\nLABEL distribution-scope=public\nFROM base\n"
    with pytest.raises(DockerfileError):
        _run(tmp_path, df, {"distribution-scope": "restricted"})
