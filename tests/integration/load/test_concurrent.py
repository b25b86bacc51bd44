"""Six builds at once, of six different sources, all named the same image.

Every build must get its own working directory, results, tags and log file and
see nothing of the others (Dockerfile, labels, build output). All six push the
same tag ``latest`` plus a tag of their own (``tag_from_config`` reads it from the
source): each build's recorded digest for ``latest`` is the digest of the image it
built (equal to what the registry holds under its own tag), and the registry ends
with ``latest`` pointing to exactly one of the six, never a mix.

Once in threads of this process (the API), once in separate processes (the CLI).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AtomicReactorError
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry

BUILDS = 6


@dataclass(frozen=True)
class Spec:
    """One of the concurrent builds: its source and what marks it as its own."""

    index: int
    marker: str
    tag: str
    context: Path


def _specs(tmp_path: Path, name: str, base_image: BaseImage) -> list[Spec]:
    specs = []
    for index in range(BUILDS):
        suffix = unique("m").rsplit("-", 1)[-1]
        marker = f"build{index}_{suffix}"
        tag = f"own{index}_{suffix}"  # no '-': tag_from_config ignores those
        context = write_context(tmp_path / f"src{index}", f"""
            FROM {base_image.repo}
            LABEL name="{name}" build-marker="{marker}"
            COPY mine.txt /mine.txt
            RUN echo "output of {marker}" && cat /mine.txt
            """, {"mine.txt": f"content of {marker}\n", "additional-tags": f"{tag}\n"})
        specs.append(Spec(index, marker, tag, context))
    return specs


#: one plugin file for all builds: loaded by six threads at once
PLUGIN_FILE = '''
from atomic_reactor.plugin import ExitPlugin


class ReportOwn(ExitPlugin):
    key = "report_own"

    def run(self):
        with open(self.workflow.builder.df_path) as handle:
            dockerfile = handle.read()
        labels = self.workflow.built_image_inspect["Config"]["Labels"]
        return {"marker": labels["build-marker"], "dockerfile": dockerfile,
                "workdir": self.workflow.workdir}
'''


def _plugins(plugin_file: Path) -> dict[str, Any]:
    return {"postbuild_plugins": [{"name": "tag_from_config"}],
            "exit_plugins": [{"name": "report_own"}], "plugin_files": [str(plugin_file)]}


def _plugin_file(tmp_path: Path) -> Path:
    path = tmp_path / "report_own.py"
    path.write_text(PLUGIN_FILE)
    return path


def _check_isolation(specs: list[Spec], outputs: Mapping[int, Mapping[str, Any]],
                     registry: Registry, name: str) -> None:
    """The assertions shared by the thread and the process variant (results as dicts)."""
    latest = f"{registry.address}/{name}:latest"
    digests: dict[int, str] = {}
    log_files = set()
    workdirs = set()
    sources = set()
    others = {spec.index: [s.marker for s in specs if s is not spec] for spec in specs}
    for spec in specs:
        data = outputs[spec.index]
        assert not data["failed"], (spec.index, data.get("error"))
        labels = data["built_img_inspect"]["Config"]["Labels"]
        assert labels["build-marker"] == spec.marker
        assert spec.marker in data["dockerfile"]
        logs = "".join(data["build_logs"])
        assert f"output of {spec.marker}" in logs
        assert f"content of {spec.marker}" in logs
        own_tag = f"{registry.address}/{name}:{spec.tag}"
        pushed = data["digests"][registry.address]
        assert set(pushed) == {latest, own_tag}
        # the digest it recorded for the shared tag is the one of the image it built
        assert pushed[latest] == pushed[own_tag]
        digests[spec.index] = pushed[own_tag]
        assert data["image_id"] == data["built_img_inspect"]["Id"]
        own = data["plugin_results"]["exit"]["report_own"]
        assert own["marker"] == spec.marker
        assert spec.marker in own["dockerfile"]
        workdirs.add(own["workdir"])
        log_file = Path(data["log_file"])
        log_files.add(log_file)
        log_text = log_file.read_text()
        assert f"output of {spec.marker}" in log_text
        building = [line for line in log_text.splitlines()
                    if f"building {name}:latest from " in line]
        assert len(building) == 1
        sources.add(building[0].split(" from ", 1)[1])  # the Dockerfile it built
        for text in [data["dockerfile"], json.dumps(labels), logs, log_text]:
            for other in others[spec.index]:
                assert other not in text, (spec.index, other)
    assert len(set(digests.values())) == BUILDS  # six different images
    assert len(log_files) == BUILDS
    assert len(workdirs) == BUILDS
    assert len(sources) == BUILDS
    with RegistryClient(registry.address) as client:
        for spec in specs:  # the registry holds what each build says it pushed
            assert client.get_manifest_digest(name, spec.tag) == digests[spec.index]
        assert client.get_manifest_digest(name, "latest") in digests.values()


@pytest.fixture
def info_logging() -> Iterator[None]:
    """What a program does to get the plugins' INFO lines into the build log files."""
    package = logging.getLogger("atomic_reactor")
    previous = package.level
    package.setLevel(logging.INFO)
    yield
    package.setLevel(previous)


@pytest.mark.usefixtures("info_logging")
def test_six_builds_in_threads(tmp_path: Path, registry: Registry,
                               base_image: BaseImage) -> None:
    name = unique("load-threads")
    specs = _specs(tmp_path, name, base_image)
    outputs: dict[int, dict[str, Any]] = {}
    failures: dict[int, BaseException] = {}
    plugin_file = _plugin_file(tmp_path)
    start = threading.Barrier(BUILDS)

    def build(spec: Spec) -> None:
        try:
            start.wait(timeout=60)
            results = build_image_here(path_source(spec.context), name,
                                       parent_registry=registry.address,
                                       target_registries=[registry.address],
                                       **_plugins(plugin_file))
            outputs[spec.index] = results.to_dict()
        except (AtomicReactorError, threading.BrokenBarrierError) as exc:
            failures[spec.index] = exc

    threads = [threading.Thread(target=build, args=(spec,), name=f"build-{spec.index}")
               for spec in specs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == {}
    _check_isolation(specs, outputs, registry, name)


def test_six_builds_in_processes(tmp_path: Path, registry: Registry,
                                 base_image: BaseImage) -> None:
    name = unique("load-procs")
    specs = _specs(tmp_path, name, base_image)
    plugin_file = _plugin_file(tmp_path)
    processes = []
    for spec in specs:
        build_json = tmp_path / f"build{spec.index}.json"
        build_json.write_text(json.dumps({
            "source": path_source(spec.context), "image": name,
            "parent_registry": registry.address, "target_registries": [registry.address],
            **_plugins(plugin_file),
        }))
        metadata = tmp_path / f"meta{spec.index}.json"
        command = [sys.executable, "-m", "atomic_reactor", "build", "json", str(build_json),
                   "--metadata-file", str(metadata)]
        processes.append((spec, metadata, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    outputs: dict[int, dict[str, Any]] = {}
    for spec, metadata, process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        assert f"output of {spec.marker}" in stderr  # its own build output, live
        for other in specs:
            if other is not spec:
                assert other.marker not in stderr + stdout
        outputs[spec.index] = json.loads(metadata.read_text())
    _check_isolation(specs, outputs, registry, name)


def test_six_builds_sharing_one_tasker_keep_their_own_logs(
        tmp_path: Path, registry: Registry, base_image: BaseImage) -> None:
    """A program may hand one DockerTasker to all its builds: half of them fail, and
    each failure reports its own output, not the output of whichever build the
    tasker ran last."""
    tasker = DockerTasker()
    markers = [f"shared{index}_{unique('m').rsplit('-', 1)[-1]}" for index in range(BUILDS)]
    outputs: dict[int, dict[str, Any]] = {}
    failures: dict[int, BaseException] = {}
    start = threading.Barrier(BUILDS)

    def build(index: int) -> None:
        fails = index % 2 == 0
        context = write_context(tmp_path / f"src{index}", f"""
            FROM {base_image.repo}
            RUN echo "output of {markers[index]}"{" && exit 7" if fails else ""}
            """)
        try:
            start.wait(timeout=60)
            results = build_image_here(path_source(context), unique("shared-tasker"),
                                       parent_registry=registry.address, tasker=tasker)
            outputs[index] = results.to_dict()
        except (AtomicReactorError, threading.BrokenBarrierError) as exc:
            failures[index] = exc

    threads = [threading.Thread(target=build, args=(index,)) for index in range(BUILDS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert failures == {}
    try:
        for index, data in outputs.items():
            logs = "".join(data["build_logs"])
            assert f"output of {markers[index]}" in logs
            assert all(other not in logs for other in markers if other != markers[index])
            assert data["failed"] == (index % 2 == 0), data["error"]
            if data["failed"]:
                assert "returned a non-zero code: 7" in data["fail_reason"]
        assert len(outputs) == BUILDS
    finally:
        tasker.engine.close()
