"""Builds inside build containers (methods hostdocker and privileged).

``run`` starts a build container and reads its results back; ``inside`` is what runs
in it (``atomic-reactor inside-build``); ``image`` makes build images
(``create-build-image``); ``relay`` forwards the host's loopback registries into a
privileged container's own network.
"""
