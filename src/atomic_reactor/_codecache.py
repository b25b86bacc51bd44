"""The code of the methods :mod:`dataclasses` writes for our classes, kept between runs.

``@dataclass`` writes the source of each class's ``__init__``, ``__repr__``,
``__eq__``, ``__setattr__``, ... and compiles it with ``exec`` as the class is made:
at the start of a build from the command line some 200 functions of about 40
classes, a fifth of the time the imports take. The same text always compiles to the
same code, so the code objects made for classes of this package are kept,
marshalled (as the interpreter keeps a module's in its ``.pyc``), in one file beside
the package's bytecode, keyed by their text; a text not found there is compiled as
before and the file is written again at exit (not when bytecode is not written:
``PYTHONDONTWRITEBYTECODE``, ``-B``). What :mod:`dataclasses` does with the code is
unchanged, and other packages' dataclasses are left alone.

The file starts with the interpreter's bytecode magic number; one of another
interpreter, or one that cannot be read, counts as empty.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import marshal
import os
import sys
import threading
from importlib.util import MAGIC_NUMBER, cache_from_source
from types import CodeType
from typing import Any

__all__ = ["install"]

#: the modules whose dataclasses' code is kept (by ``__name__``)
_PACKAGE = __name__.partition(".")[0]
#: more texts than this in the file: only those this process used are written
_MAX_ENTRIES = 4096


def _default_path() -> str:
    directory = os.path.dirname(cache_from_source(os.path.abspath(__file__)))
    return os.path.join(directory, f"dataclasses.{sys.implementation.cache_tag}.marshal")


class CodeCache:
    """``exec`` for :mod:`dataclasses`: compiled text of our classes from the file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._known: dict[str, CodeType] | None = None
        self._used: dict[str, CodeType] = {}
        self._missed = False

    def _read(self) -> dict[str, CodeType]:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except OSError:
            return {}
        if not data.startswith(MAGIC_NUMBER):
            return {}
        try:
            loaded = marshal.loads(data[len(MAGIC_NUMBER):])
        except (EOFError, ValueError, TypeError):
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {text: code for text, code in loaded.items()
                if isinstance(text, str) and isinstance(code, CodeType)}

    def code(self, text: str) -> CodeType:
        """The code ``exec(text)`` in :mod:`dataclasses` would compile."""
        with self._lock:
            if self._known is None:
                self._known = self._read()
            code = self._known.get(text)
            if code is None:
                # dont_inherit: no __future__ flag of this module, as dataclasses has none
                code = compile(text, "<string>", "exec", dont_inherit=True)
                self._known[text] = code
                if not self._missed:
                    self._missed = True
                    atexit.register(self.save)
            self._used[text] = code
            return code

    def exec(self, source: Any, globals: Any = None, locals: Any = None, /) -> None:
        """``builtins.exec``, with the code of our dataclasses' methods from the cache."""
        if isinstance(source, str) and isinstance(globals, dict) \
                and str(globals.get("__name__", "")).partition(".")[0] == _PACKAGE:
            source = self.code(source)
        builtins.exec(source, globals, locals)

    def save(self) -> None:
        """Write what this process compiled to the file (merged with what another process
        wrote meanwhile), atomically; nothing when it compiled nothing, or when bytecode
        is not to be written."""
        if sys.dont_write_bytecode or not self._missed:
            return
        with self._lock:
            entries = {**self._read(), **self._used}
            if len(entries) > _MAX_ENTRIES:  # old texts pile up: keep what is in use
                entries = dict(self._used)
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(MAGIC_NUMBER + marshal.dumps(entries))
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


#: the cache installed in this process (at most one)
_installed: list[CodeCache] = []


def install(path: str | None = None) -> CodeCache:
    """Make :mod:`dataclasses` compile through the cache at ``path`` (default: beside
    the package's bytecode); once per process, later calls return the first cache."""
    if not _installed:
        import dataclasses

        _installed.append(CodeCache(path or _default_path()))
        # dataclasses calls exec by its global name: one of the module shadows the builtin
        dataclasses.exec = _installed[0].exec  # type: ignore[attr-defined]
    return _installed[0]
