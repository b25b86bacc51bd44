"""What ``buildah images`` said about an image, kept until buildah changes the storage.

Every ``buildah`` command costs a process start (~20 ms, several times that on a
loaded machine), and a build asks for the names and digest of the same two images
(the base and the built one) again and again: after the pull, after the build,
for the results. :class:`ListingCache` keeps each image's listing entry and answers
a look-up by id or by (qualified) name from it, until a buildah command of this
process changes what it says: every command goes through :meth:`ListingCache.ran`
(wired into :class:`~atomic_reactor._engine.buildah.process.Buildah`), which keeps
the entries for commands that change no image (``images``, ``inspect``, ``push``,
containers), moves a name for ``tag``, forgets the images whose names a ``bud -t``
takes, and forgets everything for any other command. Names other processes move
meanwhile are not seen (as with any inspect-then-act); so that a push sends the image
this process named, :meth:`ListingCache.named` gives the image id our last ``tag`` of
a name was for (the engine pushes that id, not whatever the name points to by then).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from atomic_reactor._engine.buildah.convert import qualified

__all__ = ["ListingCache", "normal_name"]

#: buildah commands that change no image's names or digests
_KEEPS = frozenset({"images", "inspect", "containers", "info", "version", "push", "mount",
                    "umount", "from", "run", "config", "rm", "login", "logout"})
_MAX = 256


def _verb(args: Sequence[str]) -> tuple[str, list[str]]:
    """The buildah command in ``args`` (global options skipped) and its arguments."""
    for index, arg in enumerate(args):
        if not arg.startswith("-"):
            return arg, list(args[index + 1:])
        if arg in ("--root", "--runroot", "--storage-driver", "--storage-opt", "--log-level"):
            continue  # a value follows (the "=" forms need no skipping)
    return "", []


def normal_name(name: str) -> str:
    """``name`` as buildah lists it: qualified (``localhost/`` for a local name), with
    ``:latest`` when it has neither tag nor digest."""
    full = qualified(name)
    if "@" not in full and ":" not in full.rsplit("/", 1)[-1]:
        full += ":latest"
    return full


def _bare_id(image: str) -> str | None:
    hexpart = image.removeprefix("sha256:")
    if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
        return hexpart
    return None


class ListingCache:
    """``buildah images --json`` entries by image id, valid while our commands keep them."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        #: name -> the image id our own ``tag`` gave it (or found it had), while no other
        #: command of ours may have moved it: a push of that name sends that image
        self._named: dict[str, str] = {}
        self._lock = threading.Lock()

    def named(self, name: str) -> str | None:
        """The image id our last tag gave ``name``, if nothing of ours moved it since."""
        with self._lock:
            return self._named.get(normal_name(name))

    def note_named(self, image: str, name: str) -> None:
        """``image`` (an id) is known to be named ``name`` (a tag that was not needed)."""
        bare = _bare_id(image)
        if bare is not None:
            with self._lock:
                self._named[normal_name(name)] = bare

    def lookup(self, image: str) -> dict[str, Any] | None:
        """The entry for ``image`` (an id or a name), if known and still valid."""
        bare = _bare_id(image)
        wanted = normal_name(image) if bare is None else ""
        with self._lock:
            if bare is not None:
                return self._entries.get(bare)
            for entry in self._entries.values():
                if wanted in (entry.get("names") or ()):
                    return entry
        return None

    def store(self, entries: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            if len(self._entries) > _MAX:
                self._entries.clear()
            for entry in entries:
                bare = _bare_id(str(entry.get("id") or ""))
                if bare is not None:
                    self._entries[bare] = entry

    def _drop_name(self, name: str) -> None:
        for key, entry in list(self._entries.items()):
            names = list(entry.get("names") or ())
            if name in names:
                self._entries[key] = {**entry, "names": [n for n in names if n != name]}

    def ran(self, args: Sequence[str], ok: bool = True) -> None:
        """A buildah command ``args`` ran (or was started): keep what it keeps."""
        verb, rest = _verb(args)
        if verb in _KEEPS:
            return
        with self._lock:
            if verb == "tag" and len(rest) >= 2 and not any(a.startswith("-") for a in rest):
                if not ok:
                    return
                image, names = rest[0], [normal_name(name) for name in rest[1:]]
                bare = _bare_id(image)
                for name in names:
                    self._drop_name(name)
                    if bare is not None:
                        self._named[name] = bare
                    else:
                        self._named.pop(name, None)
                entry = self._entries.get(bare) if bare is not None else None
                if entry is not None:
                    self._entries[bare or ""] = {
                        **entry, "names": [*(entry.get("names") or ()), *names]}
                else:  # tagged by name: which entry that was is not known here
                    self._entries.clear()
                return
            if verb in ("bud", "build"):
                tags = [normal_name(rest[i + 1]) for i, arg in enumerate(rest[:-1])
                        if arg in ("-t", "--tag")]
                tags += [normal_name(arg.split("=", 1)[1]) for arg in rest
                         if arg.startswith("--tag=")]
                if "--pull-always" not in rest and "--pull" not in rest and tags:
                    # the new image takes the tags; no other image changes
                    self._entries = {key: entry for key, entry in self._entries.items()
                                     if not set(entry.get("names") or ()) & set(tags)}
                    for tag in tags:
                        self._named.pop(tag, None)
                    return
            self._entries.clear()
            self._named.clear()

    def has_name(self, image: str, name: str) -> bool:
        """Whether ``image`` is known (still) to be named ``name``."""
        entry = self.lookup(image)
        return entry is not None and normal_name(name) in (entry.get("names") or ())
