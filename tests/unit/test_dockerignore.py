"""Our ``.dockerignore`` matcher sends exactly what the Docker SDK for Python (what 1.6
used) would: the two are compared on one tree and many pattern sets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from atomic_reactor._engine.context import stream_context
from atomic_reactor._engine.dockerignore import included_paths, read_patterns
from atomic_reactor.errors import BuildFailed

FILES = [
    "Dockerfile", "Dockerfile.alt", ".dockerignore", ".git/config", ".git/objects/ab/cd",
    "README.md", "readme.txt", "Makefile", "src/app.py", "src/app.pyc", "src/util/x.py",
    "src/util/x.pyc", "src/Test/case.py", "docs/a.md", "docs/deep/er/b.md", "docs/deep/c.txt",
    "build/out.o", "build/keep.me", "node_modules/m/index.js", "a[b]c", "a]b", "qx", "q/x",
    "sub/Dockerfile", "sub/inner/f", "x.tmp", "dir.tmp/file", "weird name.txt", "-dash",
]

PATTERN_SETS = [
    ["*"],
    ["*", "!src"],
    ["*", "!src/app.py"],
    ["**/*.pyc"],
    ["**"],
    ["src/**/*.py", "!src/util"],
    ["*.md", "!README.md"],
    ["README.MD"],  # the SDK ignores case
    ["docs", "!docs/deep/c.txt"],
    ["docs/*", "!docs/deep"],
    ["docs/deep/**"],
    ["**/deep"],
    [".git", "node_modules/", "/build", "!build/keep.me"],
    ["./src/../docs", "src/util/.."],
    ["../../x.tmp", "*.tmp"],
    ["a[b]c", "a]b"],
    ["a[!b]c", "[q]x"],
    ["a[", "[]", "[!]"],
    ["?x", "q?x"],
    ["Dockerfile", ".dockerignore", "sub"],
    ["sub/*", "!sub/Dockerfile"],
    [".", "/", "//", "!."],
    ["*/", "!*/inner"],
    ["weird name.txt", "-dash", "#not-a-comment-here"],
    ["src", "!src/Test/*"],
    ["**/x.py", "!src/**/x.py"],
    ["d*", "!D*"],
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("context")
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    (root / "empty-dir").mkdir()
    (root / "link-to-src").symlink_to("src")  # not followed
    (root / "dangling").symlink_to("nowhere")
    return root


@pytest.mark.parametrize("patterns", PATTERN_SETS, ids=lambda p: " ".join(p) or "none")
@pytest.mark.parametrize("dockerfile", [None, "Dockerfile.alt", "sub/Dockerfile"])
def test_the_same_paths_as_the_sdk(tree: Path, patterns: list[str],
                                   dockerfile: str | None) -> None:
    ours = included_paths(str(tree), patterns, dockerfile)
    sdks = exclude_paths(str(tree), list(patterns), dockerfile=dockerfile)
    assert ours == sdks


def test_patterns_are_read_as_the_sdk_reads_them(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(
        "# a comment\n\n  *.log  \n!keep.log\n\t# indented comment\nbuild/\n")
    assert read_patterns(str(tmp_path)) == ["*.log", "!keep.log", "build/"]
    assert read_patterns(str(tmp_path / "nothing")) == []


def test_a_context_with_a_dockerignore_does_not_import_the_sdk(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "secret.env").write_text("TOKEN=1\n")
    (tmp_path / ".dockerignore").write_text("*.env\n")
    code = ("import sys\n"
            "from atomic_reactor._engine.context import stream_context\n"
            f"data = b''.join(stream_context({str(tmp_path)!r}))\n"
            "assert b'TOKEN' not in data and b'FROM scratch' in data\n"
            "print('docker' in sys.modules, 'requests' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "False"]


def test_an_unreadable_directory_fails_the_build_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text("*.log\n")
    (tmp_path / "closed").mkdir()
    listdir = os.listdir

    def refusing(path: str) -> list[str]:  # root reads every directory: refused here
        if os.path.basename(path) == "closed":
            raise PermissionError(13, "Permission denied", path)
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refusing)
    with pytest.raises(BuildFailed, match=r"^cannot read closed in the build context: "
                                          "Permission denied$"):
        b"".join(stream_context(str(tmp_path)))
