"""LaterMapping: worked out in a background thread, waited for at the first look."""

from __future__ import annotations

import threading

from atomic_reactor._image.layout import Descriptor
from atomic_reactor._image.push import LaterMapping

BLOB = Descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", "sha256:" + "a" * 64, 3)


def test_the_first_look_waits_for_the_answer() -> None:
    release = threading.Event()

    def compute() -> dict[str, Descriptor]:
        release.wait(10)
        return {"sha256:" + "b" * 64: BLOB}

    later = LaterMapping(compute)
    threading.Timer(0.1, release.set).start()
    assert later.get("sha256:" + "b" * 64) == BLOB  # waited for compute()
    assert len(later) == 1 and list(later) == ["sha256:" + "b" * 64]


def test_a_failed_lookup_is_an_empty_mapping() -> None:
    def compute() -> dict[str, Descriptor]:
        raise OSError("the registry went away")

    later = LaterMapping(compute)
    assert not later and later.get("anything") is None
