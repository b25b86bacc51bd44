"""Finding container engine backends by name.

Backends are classes registered in the ``atomic_reactor.engines`` entry-point
group (``docker = "atomic_reactor._engine.docker:DockerEngine"``); the built-ins
are registered there like third-party ones (and found without scanning every
installed distribution: :mod:`atomic_reactor._entrypoints`). A backend module is imported only
when its engine is loaded, so choosing one engine never imports another's SDK.

A backend class is made with keyword arguments only:
``DockerTasker(engine="name")`` passes ``timeout`` (seconds to wait for the
engine), ``base_url`` when the caller gave one, and the caller's other keyword
arguments; a backend accepts (and may ignore) ``timeout`` and ``base_url``.
"""

from __future__ import annotations

import logging
from typing import Any

from atomic_reactor._engine.base import ContainerEngine
from atomic_reactor._entrypoints import entry_point_names, find_entry_point
from atomic_reactor.errors import EngineConfigError

logger = logging.getLogger(__name__)

__all__ = ["ENTRY_POINT_GROUP", "engine_names", "load_engine", "load_engine_class"]

ENTRY_POINT_GROUP = "atomic_reactor.engines"


def engine_names() -> list[str]:
    """The names of the installed engine backends, sorted."""
    return entry_point_names(ENTRY_POINT_GROUP)


def load_engine_class(name: str) -> type[ContainerEngine]:
    """The backend class registered as ``name``; :class:`EngineConfigError` if unknown."""
    entry = find_entry_point(ENTRY_POINT_GROUP, name)
    if entry is None:
        known = ", ".join(engine_names()) or "none installed"
        raise EngineConfigError(f"unknown engine {name!r} (known engines: {known})")
    try:
        loaded = entry.load()
    except ImportError as exc:
        raise EngineConfigError(f"engine {name!r} cannot be loaded: {exc}") from None
    if not isinstance(loaded, type):
        raise EngineConfigError(f"engine {name!r} ({entry.value}) is not a class")
    cls: type[ContainerEngine] = loaded
    return cls


def load_engine(name: str, **options: Any) -> ContainerEngine:
    """A new backend ``name`` made with ``options`` (e.g. ``base_url``, ``timeout``)."""
    engine = load_engine_class(name)(**options)
    logger.debug("using the %s engine at %s", name, engine.address)
    return engine
