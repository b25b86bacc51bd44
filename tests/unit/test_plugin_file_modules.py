"""Plugin files in a long-running process: loaded once at a time, not kept forever."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

from atomic_reactor.plugin import PluginLibrary

SOURCE = '''
from atomic_reactor.plugin import ExitPlugin


class Job(ExitPlugin):
    key = "job_{n}"

    def run(self):
        return {n}
'''


def _file_modules() -> set[str]:
    return {name for name in sys.modules if name.startswith("atomic_reactor_plugin_file_job")}


def _write(directory: Path, n: int) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "job.py"
    path.write_text(SOURCE.replace("{n}", str(n)))
    return str(path)


def test_modules_of_dropped_libraries_do_not_pile_up(tmp_path: Path) -> None:
    before = _file_modules()
    kept = PluginLibrary([_write(tmp_path / "kept", 0)])
    for n in range(1, 41):  # a file of its own per job, as a service would write them
        library = PluginLibrary([_write(tmp_path / f"job{n}", n)])
        assert library.find(f"job_{n}") is not None
        del library
    gc.collect()
    grown = _file_modules() - before
    assert len(grown) <= 1 + 8  # the live library's module + a few recently used ones
    plugin = kept.find("job_0")
    assert plugin is not None
    assert plugin.__module__ in grown  # a library in use keeps its module


def test_an_edited_file_is_loaded_anew(tmp_path: Path) -> None:
    path = _write(tmp_path, 1)
    first = PluginLibrary([path])
    Path(path).write_text(SOURCE.replace("{n}", "2").replace("job_2", "job_1"))
    second = PluginLibrary([path])
    old, new = first.find("job_1"), second.find("job_1")
    assert old is not None and new is not None and old is not new


def test_threads_loading_one_file_all_get_its_plugin(tmp_path: Path) -> None:
    path = _write(tmp_path, 7)
    found: list[object] = []
    start = threading.Barrier(8)

    def load() -> None:
        start.wait(timeout=30)
        found.append(PluginLibrary([path]).find("job_7"))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(found) == 8
    assert all(plugin is not None for plugin in found)
