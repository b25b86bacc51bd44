"""atomic_reactor._entrypoints: our own entry points without a scan, others with one."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import pytest

from atomic_reactor import _entrypoints
from atomic_reactor._engine.registry import ENTRY_POINT_GROUP as ENGINES
from atomic_reactor.plugin import ENTRY_POINT_GROUP as PLUGINS


@pytest.mark.parametrize("group", [ENGINES, PLUGINS])
def test_own_entry_points_are_what_importlib_metadata_reads(group: str) -> None:
    own = _entrypoints.own_entry_points(group)
    assert own is not None
    installed = {ep.name: ep.value for ep in entry_points(group=group)
                 if ep.dist is not None and ep.dist.name == "atomic-reactor"}
    assert {name: ep.value for name, ep in own.items()} == installed
    assert own  # the built-ins are registered


def test_own_entry_point_loads_without_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(group: str) -> dict[str, _entrypoints.EntryPointLike]:
        raise AssertionError(f"scanned every distribution for {group}")

    monkeypatch.setattr(_entrypoints, "installed_entry_points", no_scan)
    found = _entrypoints.find_entry_point(ENGINES, "buildah")
    assert found is not None
    from atomic_reactor._engine.buildah import BuildahEngine
    assert found.load() is BuildahEngine


def test_third_party_entry_point_found_by_a_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = EntryPoint(name="elsewhere", value="json:dumps", group=ENGINES)
    shadow = EntryPoint(name="buildah", value="json:loads", group=ENGINES)

    def scan(group: str) -> dict[str, _entrypoints.EntryPointLike]:
        return {"elsewhere": extra, "buildah": shadow,
                **(_entrypoints.own_entry_points(group) or {})}

    monkeypatch.setattr(_entrypoints, "installed_entry_points", scan)
    assert _entrypoints.find_entry_point(ENGINES, "elsewhere") is extra
    builtin = _entrypoints.find_entry_point(ENGINES, "buildah")
    assert builtin is not None and builtin.value.endswith(":BuildahEngine")
    assert "elsewhere" in _entrypoints.entry_point_names(ENGINES)
    assert _entrypoints.find_entry_point(ENGINES, "nowhere") is None


def test_entry_point_attribute_path() -> None:
    point = _entrypoints.OwnEntryPoint("x", "os.path:join", "g")
    import os.path
    assert point.load() is os.path.join
