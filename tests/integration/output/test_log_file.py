"""The complete build log is kept in a file whose path is in the results."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from atomic_reactor.api import build_image_here
from tests.integration.helpers import path_source, run_cli, step_line, unique, write_context
from tests.support.env import BaseImage, Registry

LINES = 30_000
PAD = "x" * 64


def test_more_than_two_megabytes_of_output_are_all_in_the_log_file(
        tmp_path: Path, registry: Registry, base_image: BaseImage) -> None:
    marker = unique("big")
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN i=0; while [ $i -lt {LINES} ]; do echo "{marker} $i {PAD}"; i=$((i+1)); done
        """)
    results = build_image_here(path_source(context), unique("biglog"),
                               parent_registry=registry.address)
    assert not results.is_failed(), results.error
    assert results.log_file is not None
    log_file = Path(results.log_file)
    # the default place: a directory of its own under $XDG_STATE_HOME/atomic-reactor/logs
    logs_dir = Path(os.environ["XDG_STATE_HOME"]) / "atomic-reactor" / "logs"
    assert log_file.parent.parent == logs_dir
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert log_file.stat().st_size > 2 * 1024 * 1024
    numbers = [int(line.split()[1]) for line in log_file.read_text().splitlines()
               if line.startswith(marker)]
    assert numbers == list(range(LINES))  # every line, once, in order, none cut
    for line in log_file.read_text().splitlines():
        if line.startswith(marker):
            assert line.endswith(PAD)
    assert "Successfully built" in log_file.read_text()
    # the results carry the whole output too
    assert "".join(results.build_logs).count(marker) >= LINES


def test_log_file_option_keeps_plugin_lines_even_when_quiet(
        tmp_path: Path, registry: Registry, base_image: BaseImage, engine_name: str) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo "{unique('quiet')}"
        """)
    log_file = tmp_path / "logs" / "build.log"
    metadata = tmp_path / "meta.json"
    name = unique("logopt")
    done = run_cli(["-q", "build", "path", "--uri", str(context), "--image", name,
                    "--source-registry", registry.address,
                    "--target-registries", registry.address,
                    "--log-file", str(log_file), "--metadata-file", str(metadata)])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # quiet on the console...
    text = log_file.read_text()  # ...complete in the file
    assert "INFO atomic_reactor.plugin: running prebuild plugin pull_base_image" in text
    assert f"pull {registry.address}/{base_image.repo}: " in text
    assert step_line(engine_name, 2, 2, "RUN echo") in text
    assert f"push {registry.address}/{name}:latest: " in text
    assert f"pushed {registry.address}/{name}:latest" in text
    assert json.loads(metadata.read_text())["log_file"] == str(log_file)


def test_unwritable_log_file_is_bad_input(tmp_path: Path, base_image: BaseImage) -> None:
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\n")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = run_cli(["build", "path", "--uri", str(context), "--image", unique(),
                    "--dont-pull-base-image", "--log-file", str(not_a_dir / "build.log")],
                   env={"TMPDIR": str(tmp)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"atomic-reactor: error: cannot write the log file {not_a_dir}/build.log: ")
    assert [p.name for p in tmp.iterdir() if p.name != "atomic-reactor-locks"] == []
