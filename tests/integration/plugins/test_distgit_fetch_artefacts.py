"""distgit_fetch_artefacts through the real pipeline and engine."""

from __future__ import annotations

from pathlib import Path

from atomic_reactor.api import BuildResults, build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context
from tests.integration.plugins.dockerfile_helpers import read_in_image
from tests.support.env import BaseImage

KEY = "distgit_fetch_artefacts"


def _build(base_image: BaseImage, context: Path, command: str) -> BuildResults:
    return build_image_here(
        source=path_source(context), image=f"{unique('art-distgit')}:1",
        parent_registry=base_image.registry.address,
        prebuild_plugins=[{"name": KEY, "args": {"command": command, "timeout": 120}}])




def test_fetched_artefact_is_copied_into_the_image(
        tasker: DockerTasker, base_image: BaseImage, workdir: Path) -> None:
    original = workdir / "src"
    context = write_context(original, f"""
        FROM {base_image.repo}
        COPY artefact.txt /artefact.txt
    """, files={"sources": "d41d8cd98f00b204e9800998ecf8427e  artefact.txt\n"})
    results = _build(base_image, context,
                     "printf 'fetched from %s\\n' \"$(basename \"$PWD\")\" > artefact.txt")

    assert not results.is_failed(), results.error
    fetched = results.plugin_results["prebuild"][KEY]
    assert fetched["returncode"] == 0
    assert fetched["sources"] == "d41d8cd98f00b204e9800998ecf8427e  artefact.txt\n"
    assert results.image_id
    content = read_in_image(tasker, results.image_id, "/artefact.txt")
    assert content.startswith(b"fetched from src") and content.endswith(b"\n")
    # it ran in the build's copy of the source, not in the directory given
    assert not (original / "artefact.txt").exists()


def test_failing_command_fails_the_build_with_its_output(
        base_image: BaseImage, workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        COPY artefact.txt /artefact.txt
    """, files={"sources": "abc  artefact.txt\n"})
    results = _build(base_image, context,
                     "echo 'Downloading artefact.txt'; echo 'error: 404 from lookaside' >&2; "
                     "exit 7")

    assert results.is_failed()
    assert results.image_id is None  # the build never started
    error = results.plugins_errors[KEY]
    assert "exited with status 7" in error
    assert "Downloading artefact.txt\nerror: 404 from lookaside" in error
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert "error: 404 from lookaside" in results.error["message"]


def test_without_sources_file_nothing_runs(base_image: BaseImage, workdir: Path) -> None:
    context = write_context(workdir / "src", f"""
        FROM {base_image.repo}
        RUN true
    """)
    results = _build(base_image, context, "exit 1")

    assert not results.is_failed(), results.error
    fetched = results.plugin_results["prebuild"][KEY]
    assert fetched["skipped"] is True and fetched["returncode"] is None
