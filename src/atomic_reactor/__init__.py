"""atomic-reactor: build container images through a plugin pipeline.

The public surface is the modules the 1.6 API documents: :mod:`atomic_reactor.api`,
:mod:`~atomic_reactor.core`, :mod:`~atomic_reactor.inner`, :mod:`~atomic_reactor.build`,
:mod:`~atomic_reactor.plugin`, :mod:`~atomic_reactor.source`, :mod:`~atomic_reactor.util`
and :mod:`~atomic_reactor.errors`. Modules whose names start with ``_`` are private.
"""

__version__ = "1.6.0"
