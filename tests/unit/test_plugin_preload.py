"""Plugin.preload: what a plugin after the build imports is imported while the engine
builds, and finished before that plugin runs."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor.core import DockerTasker
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugin import PRELOAD_NICE, Preloading
from atomic_reactor.plugins.tag_and_push import TagAndPushPlugin
from tests.support.fake_engine import FakeEngine, fake_tasker
from tests.unit.plugins.reporting_fakes import make_workflow

PLUGINS = '''
import importlib
import os
import sys
import threading
import time

from atomic_reactor.plugin import PostBuildPlugin

MODULE = {module!r}


class PreloadProbe(PostBuildPlugin):
    key = "preload_probe"

    @classmethod
    def preload(cls, tasker, workflow, args):
        return (MODULE, "no_such_module_for_preload_tests") if args.get("want") else ()

    def __init__(self, tasker, workflow, want=True):
        super().__init__(tasker, workflow)
        self.want = want

    def run(self):
        was_loaded = MODULE in sys.modules
        module = importlib.import_module(MODULE)
        return {{"was_loaded": was_loaded, "thread": module.THREAD, "done": module.DONE}}
'''

SLOW_MODULE = '''
import threading
import time
import time

THREAD = threading.current_thread().name
time.sleep(0.3)  # longer than the fake engine's build
DONE = True
'''


def _workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, want: bool
              ) -> tuple[DockerBuildWorkflow, str]:
    module = f"art_preload_probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / f"{module}.py").write_text(SLOW_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    plugins = tmp_path / "probes.py"
    plugins.write_text(PLUGINS.format(module=module))
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nLABEL a=b\n")
    workflow = DockerBuildWorkflow(
        {"provider": "path", "uri": f"file://{context}"}, "app:1",
        postbuild_plugins=[{"name": "preload_probe", "args": {"want": want}}],
        plugin_files=[str(plugins)], tasker=DockerTasker(engine=FakeEngine()))
    return workflow, module


def test_a_preload_is_imported_during_the_build_and_done_before_the_plugin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workflow, module = _workflow(tmp_path, monkeypatch, want=True)
    try:
        results = workflow.build_container_image()
        results.raise_for_status()
        # imported in the background, complete when the plugin ran (a module that does
        # not exist was skipped: the plugin that imports it would report it)
        assert workflow.postbuild_results["preload_probe"] == {
            "was_loaded": True, "thread": "plugin-preload", "done": True}
    finally:
        sys.modules.pop(module, None)


def test_nothing_is_preloaded_unless_asked(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    workflow, module = _workflow(tmp_path, monkeypatch, want=False)
    try:
        results = workflow.build_container_image()
        results.raise_for_status()
        outcome = workflow.postbuild_results["preload_probe"]
        assert outcome["was_loaded"] is False and outcome["thread"] == "MainThread"
    finally:
        sys.modules.pop(module, None)


def test_no_modules_no_thread() -> None:
    preloading = Preloading([])
    assert preloading._thread is None
    preloading.join()


def _push_plugin(tmp_path: Path, **args: Any) -> tuple[TagAndPushPlugin, tuple[str, ...]]:
    workflow = make_workflow(tmp_path)
    tasker = fake_tasker(FakeEngine())
    full = {"registries": {"r.example:5000": {}}, **args}
    return (TagAndPushPlugin(tasker, workflow, **full),
            TagAndPushPlugin.preload(tasker, workflow, full))


def test_tag_and_push_preloads_our_push_only_when_it_is_ours(tmp_path: Path) -> None:
    ours, preload = _push_plugin(tmp_path)
    assert ours.push_method == "registry"
    assert preload == ("atomic_reactor._image.push",)
    engine, preload = _push_plugin(tmp_path, push_method="engine")
    assert engine.push_method == "engine" and preload == ()


def test_the_preloading_thread_is_nicer_than_the_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"art_preload_nice_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import os, threading\n"
        "NICE = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        Preloading([module]).join()
        mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert min(19, mine + PRELOAD_NICE) == sys.modules[module].NICE
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    finally:
        sys.modules.pop(module, None)


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    module = f"art_preload_delay_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


def test_the_imports_wait_for_the_delay_and_a_join_cuts_it_short(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(tmp_path, monkeypatch)
    try:
        preloading = Preloading([module], delay=60)
        time.sleep(0.3)
        assert module not in sys.modules  # still waiting
        started = time.monotonic()
        preloading.join()
        assert sys.modules[module].LOADED and time.monotonic() - started < 10
    finally:
        sys.modules.pop(module, None)


def test_after_the_delay_the_imports_run_without_a_join(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(tmp_path, monkeypatch)
    try:
        preloading = Preloading([module], delay=0.05)
        deadline = time.monotonic() + 10
        while module not in sys.modules and time.monotonic() < deadline:
            time.sleep(0.02)
        assert module in sys.modules
        preloading.join()
    finally:
        sys.modules.pop(module, None)
