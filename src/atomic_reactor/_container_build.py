"""Builds inside a build container (hostdocker, privileged)."""

from __future__ import annotations

from typing import Any

from atomic_reactor._request import BuildRequest
from atomic_reactor._results import BuildResults
from atomic_reactor.errors import InputError

__all__ = ["run_in_build_container"]


def run_in_build_container(method: str, request: BuildRequest, **kwargs: Any) -> BuildResults:
    raise InputError(f"build method {method!r} is not available in this version yet; "
                     "use method 'here'")
