"""Entry points (engine backends, plugins), found without scanning every installed package.

``importlib.metadata`` reads the metadata of every installed distribution to answer
one question, and importing it costs more than the rest of the start-up of a build.
The built-in engines and plugins are entry points of atomic-reactor's own
distribution, so they are read from its ``entry_points.txt`` directly (the first
``atomic_reactor-*.dist-info`` / ``.egg-info`` on ``sys.path``, as
``importlib.metadata`` would pick it); only a name that is not one of ours, or a
listing of every name, scans the installed distributions (once per process).
A third-party entry point with the same name as a built-in one does not replace it.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["EntryPointLike", "OwnEntryPoint", "entry_point_names", "find_entry_point",
           "installed_entry_points", "own_entry_points"]

_OWN = re.compile(r"atomic_reactor-[^/]*\.dist-info|atomic_reactor\.egg-info")


class EntryPointLike(Protocol):
    """What is used of an entry point: ``importlib.metadata.EntryPoint`` has it."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


@dataclass(frozen=True)
class OwnEntryPoint:
    """An entry point of atomic-reactor's own distribution (``module:attr``)."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        module, _, attrs = self.value.partition(":")
        loaded: Any = importlib.import_module(module.strip())
        for attr in filter(None, attrs.split("[", 1)[0].strip().split(".")):
            loaded = getattr(loaded, attr)
        return loaded


def _own_metadata_dir() -> str | None:
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in sorted(names):
            if _OWN.fullmatch(name):
                return os.path.join(entry or ".", name)
    return None


@functools.cache
def _own_groups() -> dict[str, dict[str, OwnEntryPoint]] | None:
    """Our distribution's entry points by group; None when it is not installed."""
    directory = _own_metadata_dir()
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, "entry_points.txt"), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    groups: dict[str, dict[str, OwnEntryPoint]] = {}
    group: dict[str, OwnEntryPoint] | None = None
    group_name = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group_name = line[1:-1].strip()
            group = groups.setdefault(group_name, {})
        elif group is not None and "=" in line:
            name, _, value = line.partition("=")
            group[name.strip()] = OwnEntryPoint(name.strip(), value.strip(), group_name)
    return groups


def own_entry_points(group: str) -> dict[str, OwnEntryPoint] | None:
    """Our own entry points of ``group`` (None: our distribution's metadata not found)."""
    groups = _own_groups()
    return None if groups is None else dict(groups.get(group, {}))


@functools.cache
def installed_entry_points(group: str) -> dict[str, EntryPointLike]:
    """Every installed distribution's entry points of ``group`` (one scan per process)."""
    from importlib.metadata import entry_points

    found: dict[str, EntryPointLike] = {ep.name: ep for ep in entry_points(group=group)}
    found.update(own_entry_points(group) or {})
    return found


def find_entry_point(group: str, name: str) -> EntryPointLike | None:
    """The entry point ``name`` of ``group``: ours without a scan, else any installed."""
    own = own_entry_points(group)
    if own is not None and name in own:
        return own[name]
    return installed_entry_points(group).get(name)


def entry_point_names(group: str) -> list[str]:
    """The names of every installed entry point of ``group``, sorted."""
    return sorted(installed_entry_points(group))
