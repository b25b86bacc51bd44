"""Fixtures for multi-platform tests: emulation, multi-arch busybox bases in ``registry``.

``multiarch_base``: busybox for linux/amd64 and linux/arm64 as a Docker manifest list;
``oci_multiarch_base``: the same as an OCI index over OCI manifests;
``amd64_only_base``: a list with only linux/amd64 (a base missing arm64).
Each is pushed once per session to the session's open ``registry``.
"""

from __future__ import annotations

import pytest

from tests.support.env import EnvError, Registry
from tests.support.multiarch import (
    AMD64,
    ARM64,
    MultiArchBase,
    emulation_available,
    push_multiarch_base,
)


@pytest.fixture(scope="session")
def emulation() -> None:
    """Fail (not skip) when arm64 binaries cannot run: the suite is meant to test that."""
    if not emulation_available(ARM64):
        pytest.fail("linux/arm64 binaries cannot run here: binfmt_misc/qemu-aarch64 is not "
                    "enabled (run `bash scripts/ensure-env.sh` as root)", pytrace=False)


def _push(registry: Registry, repository: str, **kwargs: object) -> MultiArchBase:
    try:
        return push_multiarch_base(registry, repository, **kwargs)  # type: ignore[arg-type]
    except EnvError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def multiarch_base(registry: Registry, emulation: None) -> MultiArchBase:
    return _push(registry, "multiarch/busybox", tag="latest", platforms=(AMD64, ARM64))


@pytest.fixture(scope="session")
def oci_multiarch_base(registry: Registry, emulation: None) -> MultiArchBase:
    return _push(registry, "multiarch/busybox-oci", tag="latest", platforms=(AMD64, ARM64),
                 oci=True)


@pytest.fixture(scope="session")
def amd64_only_base(registry: Registry) -> MultiArchBase:
    return _push(registry, "multiarch/busybox-amd64", tag="latest", platforms=(AMD64,))
