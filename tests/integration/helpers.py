"""Small helpers shared by the integration tests (no fixtures here)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str = "art-test") -> str:
    """A unique, valid image repository name."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_context(directory: Path, dockerfile: str, files: Mapping[str, str] | None = None
                  ) -> Path:
    """Write a build context: a Dockerfile plus ``files``; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    for name, content in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return directory


def step_line(engine: str, number: int, total: int, instruction: str) -> str:
    """The build-log line with which ``engine`` ("docker" or "buildah") starts a
    Dockerfile step (each engine has its own wording)."""
    if engine == "buildah":
        return f"STEP {number}/{total}: {instruction}"
    return f"Step {number}/{total} : {instruction}"


def run_failed(engine: str, code: int) -> str:
    """How ``engine`` says that a ``RUN`` step exited with ``code``."""
    if engine == "buildah":
        return f"exit status {code}"
    return f"returned a non-zero code: {code}"


def path_source(directory: Path, dockerfile_path: str = "./") -> dict[str, str]:
    return {"provider": "path", "uri": f"file://{directory}", "dockerfile_path": dockerfile_path}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def git_repo(directory: Path, dockerfile: str, files: Mapping[str, str] | None = None) -> Path:
    """A git repository holding a build context, one commit on branch ``main``."""
    write_context(directory, dockerfile, files)
    git(directory, "init", "-q", "-b", "main")
    git(directory, "add", "-A")
    git(directory, "commit", "-q", "-m", "initial")
    return directory


def run_cli(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    """Run ``atomic-reactor`` in a subprocess (the real console entry point)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "atomic_reactor", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)


def write_plugin_file(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source).lstrip())
    return path


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    tmp_leftovers: list[str]
    new_containers: list[str]
    new_images: list[str]

    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        assert lines, "nothing on stderr"
        return lines[-1]
