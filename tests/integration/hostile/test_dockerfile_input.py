"""Dockerfiles that are not text, empty, or huge: exit 2 with one clear line.

Nothing is pulled or built, and nothing is left behind (temporary directories,
containers, images).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from atomic_reactor._dockerfile.parse import MAX_DOCKERFILE_BYTES
from tests.integration.helpers import Outcome, unique
from tests.support.env import BaseImage, Registry


def _context(tmp_path: Path, content: bytes) -> Path:
    directory = tmp_path / "src"
    directory.mkdir()
    (directory / "Dockerfile").write_bytes(content)
    (directory / "file.txt").write_text("payload\n")
    return directory


def _assert_one_line_exit_2(out: Outcome, *needles: str) -> None:
    assert out.code == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("atomic-reactor: error: "), out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in out.stderr
    assert out.tmp_leftovers == []
    assert out.new_containers == []
    assert out.new_images == []


@pytest.mark.parametrize(("content", "needles"), [
    (b"FROM busybox\nRUN echo \xff\xfe caf\xe9\n", ("not UTF-8", "offset 22")),
    (b"", ("Dockerfile is empty",)),
    (b"  \n\t\n   \n", ("Dockerfile is empty",)),
    (b"\xef\xbb\xbf", ("Dockerfile is empty",)),
], ids=["latin-1", "empty", "blank", "bom-only"])
def test_unusable_dockerfile(cli: Callable[..., Outcome], tmp_path: Path, registry: Registry,
                             content: bytes, needles: tuple[str, ...]) -> None:
    context = _context(tmp_path, content)
    out = cli("-q", "build", "path", "--uri", str(context), "--image", unique(),
              "--source-registry", registry.address)
    _assert_one_line_exit_2(out, *needles)


def test_huge_dockerfile(cli: Callable[..., Outcome], tmp_path: Path,
                         base_image: BaseImage) -> None:
    filler = b"# " + b"x" * 1021 + b"\n"
    content = f"FROM {base_image.repo}\n".encode() + filler * (MAX_DOCKERFILE_BYTES // 1024 + 1)
    assert len(content) > MAX_DOCKERFILE_BYTES
    context = _context(tmp_path, content)
    out = cli("-q", "build", "path", "--uri", str(context), "--image", unique(),
              "--dont-pull-base-image")
    _assert_one_line_exit_2(out, f"the limit is {MAX_DOCKERFILE_BYTES}")


def test_dockerfile_that_is_a_directory(cli: Callable[..., Outcome], tmp_path: Path) -> None:
    context = tmp_path / "src"
    (context / "Dockerfile").mkdir(parents=True)
    out = cli("-q", "build", "path", "--uri", str(context), "--image", unique(),
              "--dont-pull-base-image")
    assert out.code == 2, out.stderr
    assert out.last_line().startswith("atomic-reactor: error: ")
    assert "Traceback" not in out.stderr
    assert out.tmp_leftovers == [] and out.new_containers == [] and out.new_images == []


def test_without_quiet_the_error_is_still_one_line(cli: Callable[..., Outcome],
                                                   tmp_path: Path) -> None:
    """Progress lines (the source copy) come first; the error itself is one line."""
    context = _context(tmp_path, b"FROM busybox\nRUN echo \xff\n")
    out = cli("build", "path", "--uri", str(context), "--image", unique(),
              "--dont-pull-base-image")
    assert out.code == 2, out.stderr
    errors = [line for line in out.stderr.splitlines()
              if line.startswith(("error:", "warning:", "atomic-reactor: error:"))]
    assert errors == [out.last_line()]
    assert out.last_line().startswith("atomic-reactor: error: Dockerfile Dockerfile is not UTF-8")
    assert "Traceback" not in out.stderr
    assert out.tmp_leftovers == [] and out.new_containers == [] and out.new_images == []
