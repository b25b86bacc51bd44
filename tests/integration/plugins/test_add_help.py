"""add_help: help.md becomes /help.1 inside the built image."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from atomic_reactor.core import DockerTasker
from tests.integration.plugins.dockerfile_helpers import (
    build,
    exists_in_image,
    read_in_image,
    write_context,
)
from tests.support.env import BaseImage

KEY = "add_help"

HELP = """\
# NAME
app - an example image

# DESCRIPTION
Runs **nothing** at all.
"""


def test_man_page_is_in_the_image(tasker: DockerTasker, base_image: BaseImage,
                                  tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"""
        FROM {base_image.repo}
        LABEL name=example/app maintainer="Jane Doe <jane@example.com>"
        CMD ["sh"]
    """, {"help.md": HELP, ".dockerignore": "*.md\n"})
    results = build(base_image, context, [{"name": KEY}])

    assert not results.is_failed(), results.error
    man = read_in_image(tasker, str(results.image_id), "/help.1").decode()
    assert man.startswith(".nh\n.TH")
    assert man.splitlines()[1].startswith(".TH example/app")  # title block from the labels
    assert "Jane Doe" in man
    assert "Container Image Pages" in man
    assert "an example image" in man
    assert "\\fBnothing\\fP" in man
    assert results.plugin_results["prebuild"][KEY] == {
        "status": "generated", "help_file": "help.md", "man_page": "/help.1", "reason": None,
        "instruction": 'COPY ["help.1", "/help.1"]'}
    assert (tmp_path / "ctx" / "help.md").read_text() == HELP


def test_own_title_block_and_other_file_name(tasker: DockerTasker, base_image: BaseImage,
                                             tmp_path: Path) -> None:
    text = "% MYIMAGE(1) My Manual\n% Somebody\n% May 2024\n\n# NAME\nmine\n"
    context = write_context(tmp_path / "ctx", f"FROM {base_image.repo}\n",
                            {"docs/usage.md": text})
    results = build(base_image, context, [{"name": KEY, "args": {"help_file": "docs/usage.md"}}])
    assert not results.is_failed(), results.error
    man = read_in_image(tasker, str(results.image_id), "/help.1").decode()
    assert man.splitlines()[1].startswith(".TH MYIMAGE")
    assert "Container Image Pages" not in man


def test_no_help_file_is_a_recorded_skip(tasker: DockerTasker, base_image: BaseImage,
                                         tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image.repo}\n")
    results = build(base_image, context, [{"name": KEY}])
    assert not results.is_failed(), results.error
    result = results.plugin_results["prebuild"][KEY]
    assert result["status"] == "skipped"
    assert result["reason"] == "no help.md in the build context"
    assert not exists_in_image(tasker, str(results.image_id), "/help.1")


def test_missing_go_md2man_fails_naming_it(tasker: DockerTasker, base_image: BaseImage,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    # a PATH without go-md2man; the buildah engine still finds its own program there
    empty = tmp_path / "empty-path"
    empty.mkdir()
    engine_program = shutil.which("buildah")
    if engine_program is not None:
        (empty / "buildah").symlink_to(engine_program)
    monkeypatch.setenv("PATH", str(empty))
    context = write_context(tmp_path / "ctx", f"FROM {base_image.repo}\n", {"help.md": HELP})
    results = build(base_image, context, [{"name": KEY}])
    assert results.is_failed()
    assert results.image_id is None
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert "go-md2man is not installed" in results.error["message"]
