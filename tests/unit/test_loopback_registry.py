"""Which registry addresses are on this machine (plain HTTP is tried first for them)."""

from __future__ import annotations

import pytest

from atomic_reactor._reference import is_loopback_registry


@pytest.mark.parametrize("registry", [
    "localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.5.6.7:80",
    "[::1]", "[::1]:5000", "::1",
])
def test_loopback_addresses(registry: str) -> None:
    assert is_loopback_registry(registry)


@pytest.mark.parametrize("registry", [
    "quay.io", "registry.example.com:5000", "10.0.0.1:5000", "[2001:db8::1]:443",
    "2001:db8::1", "localhost.example.com",
])
def test_other_addresses(registry: str) -> None:
    assert not is_loopback_registry(registry)
