"""The ``atomic-reactor`` command line (see :mod:`atomic_reactor.cli.main`)."""
