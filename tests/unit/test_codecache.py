"""_codecache: the code dataclasses writes for our classes is kept between runs."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
import textwrap
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

import atomic_reactor
from atomic_reactor import _codecache
from atomic_reactor._codecache import CodeCache

SRC = Path(atomic_reactor.__file__).resolve().parent.parent

CLASS = textwrap.dedent('''
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: tuple[str, ...] = field(default_factory=tuple)
''')


OTHER_TEXT = "def other(): pass"
OTHER = {OTHER_TEXT: compile(OTHER_TEXT, "<string>", "exec")}


@pytest.fixture(autouse=True)
def _bytecode_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """As where bytecode is written (the test run may not write it)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def _point(cache: CodeCache, module: str = "atomic_reactor._probe") -> Any:
    sys.modules[module] = module_object = type(sys)(module)
    previous = dataclasses.__dict__.get("exec")
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    try:
        exec(CLASS, module_object.__dict__)
    finally:
        if previous is None:
            del dataclasses.exec  # type: ignore[attr-defined]
        else:
            dataclasses.exec = previous  # type: ignore[attr-defined]
        del sys.modules[module]
    return module_object.Point


def test_a_class_made_from_the_kept_code_is_the_same_class(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.marshal")
    first = CodeCache(path)
    made = _point(first)
    first.save()
    assert os.path.exists(path)

    second = CodeCache(path)
    compiled: list[str] = []
    real_compile = compile

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(source)
        return real_compile(source, *args, **kwargs)

    _codecache.compile = counting  # type: ignore[attr-defined]
    try:
        again = _point(second)
    finally:
        del _codecache.compile  # type: ignore[attr-defined]
    assert compiled == []  # every method's code came from the file
    for cls in (made, again):
        point = cls(1)
        assert (point.x, point.y, point.tags) == (1, 2, ())
        assert point == cls(1, 2, ()) and point != cls(1, 3)
        assert repr(point) == "Point(x=1, y=2, tags=())"
        assert hash(point) == hash(cls(1))
        with pytest.raises(dataclasses.FrozenInstanceError):
            point.x = 5
        with pytest.raises(TypeError):
            cls()


def test_other_packages_dataclasses_are_not_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "cache.marshal")
    cache = CodeCache(path)
    _point(cache, module="somebody_else")
    cache.save()
    assert not os.path.exists(path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\0\0\0\0" + marshal.dumps({}),
                                     MAGIC_NUMBER + b"\xff\xfe", MAGIC_NUMBER +
                                     marshal.dumps(["not", "a", "dict"]),
                                     MAGIC_NUMBER + marshal.dumps({"text": 3})])
def test_a_file_that_cannot_be_read_counts_as_empty(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cache.marshal"
    path.write_bytes(content)
    cache = CodeCache(str(path))
    assert _point(cache)(1).y == 2
    cache.save()
    kept = marshal.loads(path.read_bytes()[len(MAGIC_NUMBER):])
    assert kept and all(isinstance(code, CodeType) for code in kept.values())


def test_nothing_is_written_when_bytecode_is_not(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / "cache.marshal"
    cache = CodeCache(str(path))
    _point(cache)
    cache.save()
    assert not path.exists()


def _saved_over_another(path: Path) -> dict[str, Any]:
    """What the file holds after a class was made and saved over another process's."""
    path.write_bytes(MAGIC_NUMBER + marshal.dumps(OTHER))
    cache = CodeCache(str(path))
    _point(cache)
    cache.save()
    kept: dict[str, Any] = marshal.loads(path.read_bytes()[len(MAGIC_NUMBER):])
    return kept


def test_what_another_process_wrote_is_kept(tmp_path: Path) -> None:
    kept = _saved_over_another(tmp_path / "cache.marshal")
    assert OTHER_TEXT in kept and len(kept) > 1
    assert [name for name in os.listdir(tmp_path) if name != "cache.marshal"] == []


def test_old_texts_do_not_pile_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_codecache, "_MAX_ENTRIES", 1)
    kept = _saved_over_another(tmp_path / "cache.marshal")
    assert OTHER_TEXT not in kept and kept


def test_a_real_start_writes_the_file_once_and_then_reads_it(tmp_path: Path) -> None:
    """Two interpreters importing the package's dataclass modules: the first writes the
    file beside the bytecode (here under a PYTHONPYCACHEPREFIX), the second compiles
    none of our dataclasses' methods."""
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"), PYTHONPATH=str(SRC))
    probe = textwrap.dedent('''
        import atomic_reactor._codecache as cache
        misses = []
        real = compile
        cache.compile = lambda *a, **k: misses.append(a[0]) or real(*a, **k)
        import atomic_reactor._results, atomic_reactor._engine.types, atomic_reactor.core
        print(len(misses))
    ''')
    runs = [subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                           text=True, check=True).stdout.split()[-1] for _ in range(2)]
    assert int(runs[0]) > 50 and runs[1] == "0"
    written = list((tmp_path / "pycache").rglob("dataclasses.*.marshal"))
    assert len(written) == 1 and written[0].parent.name == "atomic_reactor"
