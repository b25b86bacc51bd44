"""The buildah engine backend (daemonless): ``engine.py`` is the
:class:`~atomic_reactor._engine.base.ContainerEngine`, ``process.py`` runs the
``buildah`` command (its errors become the project's in ``_engine/errors.py``),
``convert.py`` turns its JSON into the seam's typed values (and Docker's inspect
shape for the 1.6 names)."""

from atomic_reactor._engine.buildah.engine import BuildahEngine

__all__ = ["BuildahEngine"]
