"""The platforms a build is for: parsing and checking what a request asks.

``--platform linux/amd64,linux/arm64``, ``platforms=["linux/amd64", "arm64"]`` and
``"platforms"`` in a build json all come through :func:`parse_platforms`, once,
where the request enters; anything it refuses is bad input.
"""

from __future__ import annotations

from collections.abc import Iterable

from atomic_reactor._engine.types import Platform
from atomic_reactor.errors import InputError

__all__ = ["KNOWN_ARCHITECTURES", "parse_platforms"]

#: OCI architecture names a build may ask for (``GOARCH`` values)
KNOWN_ARCHITECTURES = frozenset({
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64",
})
_VARIANTS = {"arm": frozenset({"v5", "v6", "v7"}), "arm64": frozenset({"v8"}),
             "amd64": frozenset({"v1", "v2", "v3", "v4"})}


def _one(text: object) -> Platform:
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"invalid platform {text!r}: expected os/arch[/variant], "
                         "e.g. linux/arm64")
    try:
        platform = Platform.parse(text)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if platform.os != "linux":
        raise InputError(f"invalid platform {text.strip()!r}: only linux images can be built")
    if platform.architecture not in KNOWN_ARCHITECTURES:
        known = ", ".join(sorted(KNOWN_ARCHITECTURES))
        raise InputError(f"invalid platform {text.strip()!r}: unknown architecture "
                         f"{platform.architecture!r} (known: {known})")
    if platform.variant is not None and \
            platform.variant not in _VARIANTS.get(platform.architecture, frozenset()):
        raise InputError(f"invalid platform {text.strip()!r}: {platform.architecture} has "
                         f"no variant {platform.variant!r}")
    return platform


def parse_platforms(value: str | Iterable[object] | None) -> tuple[Platform, ...]:
    """The platforms of ``value``: a comma-separated string or a list of strings (or
    :class:`Platform` s). Empty/None gives ``()`` (a build for the engine's own
    platform, as without the option). Duplicates and unknown values are
    :class:`~atomic_reactor.errors.InputError`."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
        if not value.strip():
            return ()
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise InputError(f"platforms must be a list of os/arch strings, not "
                         f"{type(value).__name__}")
    platforms: list[Platform] = []
    for item in items:
        platform = item if isinstance(item, Platform) else _one(item)
        if platform in platforms:
            raise InputError(f"platform {platform} is named twice")
        platforms.append(platform)
    return tuple(platforms)
