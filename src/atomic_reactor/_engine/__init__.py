"""Container engine backends behind one narrow interface (private)."""

from atomic_reactor._engine.base import ContainerEngine, ContainerSpec, EngineEvent, RegistryAuth

__all__ = ["ContainerEngine", "ContainerSpec", "EngineEvent", "RegistryAuth"]
