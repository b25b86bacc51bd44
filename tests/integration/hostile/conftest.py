"""The ``cli`` fixture: run the command line and report what it left behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.integration.helpers import run_cli, unique


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


@pytest.fixture
def cli(engine: docker.APIClient, tmp_path: Path) -> Callable[..., Outcome]:
    """Run ``atomic-reactor`` with a TMPDIR of its own; list what it left there and in
    the engine (containers, images)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Outcome:
        tmp = tmp_path / f"tmpdir-{unique()}"
        tmp.mkdir()
        containers = {c["Id"] for c in engine.containers(all=True)}
        images = {i["Id"] for i in engine.images(all=True)}
        done = run_cli(list(args), env={"TMPDIR": str(tmp), **(env or {})})
        leftovers = sorted(p.name for p in tmp.iterdir() if p.name != "atomic-reactor-locks")
        return Outcome(
            code=done.returncode, stdout=done.stdout, stderr=done.stderr,
            tmp_leftovers=leftovers,
            new_containers=[c["Id"] for c in engine.containers(all=True)
                            if c["Id"] not in containers],
            new_images=[i["Id"] for i in engine.images(all=True) if i["Id"] not in images],
        )

    return run
