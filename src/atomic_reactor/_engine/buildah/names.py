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
a name was for (the engine pushes that id, not whatever the name points to by then),
and a ``bud -t`` gives its tags to the image id it wrote. A listing that ran while our
commands changed names (the engine reads an image in the background during a build or
a push) gets those changes replayed on it when stored, or is dropped when one of them
could have moved anything.
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


#: how one of our buildah commands changed the names the cache knows: ("drop", names)
#: (a build took them), ("tag", image id, names), ("clear",) (anything may have moved)
_Change = tuple[str, ...]
#: changes remembered for listings that were under way while they happened
_JOURNAL = 64


def _apply(change: _Change, entries: dict[str, dict[str, Any]]
           ) -> dict[str, dict[str, Any]] | None:
    """``entries`` after ``change`` (None: nothing of them can be trusted any more)."""
    kind, *rest = change
    if kind == "drop":
        dropped = set(rest)
        return {key: entry for key, entry in entries.items()
                if not set(entry.get("names") or ()) & dropped}
    if kind == "tag" and rest[0]:
        bare, names = rest[0], rest[1:]
        changed = dict(entries)
        for name in names:
            for key, entry in list(changed.items()):
                listed = list(entry.get("names") or ())
                if name in listed:
                    changed[key] = {**entry, "names": [n for n in listed if n != name]}
        tagged = changed.get(bare)
        if tagged is None:
            return None  # the tagged image is not among them: not told apart here
        changed[bare] = {**tagged, "names": [*(tagged.get("names") or ()), *names]}
        return changed
    return None  # a tag by name (which image it was is not known here), or anything else


class ListingCache:
    """``buildah images --json`` entries by image id, valid while our commands keep them.

    A listing may run while one of our commands changes names (the engine reads an
    image in the background while it builds or pushes): :meth:`generation` before it
    and :meth:`store` with that generation replays on it what changed meanwhile, or
    drops it when that cannot be told.
    """

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        #: name -> the image id our own ``tag`` gave it (or found it had), while no other
        #: command of ours may have moved it: a push of that name sends that image
        self._named: dict[str, str] = {}
        #: the last changes (the one counted ``self._changes`` is the last)
        self._journal: list[_Change] = []
        self._changes = 0
        self._lock = threading.Lock()

    def generation(self) -> int:
        """How many changes our commands made so far (give it to :meth:`store`)."""
        with self._lock:
            return self._changes

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

    def note_built(self, image: str, names: Sequence[str]) -> None:
        """Our build made ``image`` (an id) and gave it ``names`` (its ``-t``): a push
        of one of them sends that image, and a tag of it to one of them is not needed."""
        for name in names:
            self.note_named(image, name)

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

    def store(self, entries: Sequence[dict[str, Any]], since: int | None = None) -> None:
        """Keep the entries of a listing that started at generation ``since`` (None:
        no command of ours ran meanwhile), with what our commands changed since."""
        fresh: dict[str, dict[str, Any]] = {}
        for entry in entries:
            bare = _bare_id(str(entry.get("id") or ""))
            if bare is not None:
                fresh[bare] = entry
        with self._lock:
            missed = 0 if since is None else self._changes - since
            if missed > len(self._journal):
                return
            for change in self._journal[len(self._journal) - missed:] if missed else ():
                replayed = _apply(change, fresh)
                if replayed is None:
                    return
                fresh = replayed
            if len(self._entries) > _MAX:
                self._entries.clear()
            self._entries.update(fresh)

    def _change(self, change: _Change) -> None:
        """Apply ``change`` to the entries and note it (the lock is held)."""
        self._changes += 1
        self._journal.append(change)
        del self._journal[:-_JOURNAL]
        self._entries = _apply(change, self._entries) or {}

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
                    if bare is not None:
                        self._named[name] = bare
                    else:
                        self._named.pop(name, None)
                self._change(("tag", bare or "", *names))
                return
            if verb in ("bud", "build"):
                tags = [normal_name(rest[i + 1]) for i, arg in enumerate(rest[:-1])
                        if arg in ("-t", "--tag")]
                tags += [normal_name(arg.split("=", 1)[1]) for arg in rest
                         if arg.startswith("--tag=")]
                if "--pull-always" not in rest and "--pull" not in rest and tags:
                    # the new image takes the tags; no other image changes
                    for tag in tags:
                        self._named.pop(tag, None)
                    self._change(("drop", *tags))
                    return
            self._change(("clear",))
            self._named.clear()

    def has_name(self, image: str, name: str) -> bool:
        """Whether ``image`` is known (still) to be named ``name``."""
        entry = self.lookup(image)
        return entry is not None and normal_name(name) in (entry.get("names") or ())
