"""Unit tests of the command line (atomic_reactor.cli.main.main) without an engine."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor import __version__
from atomic_reactor.cli.main import main
from atomic_reactor.plugins.tag_and_push import TagAndPushPlugin
from tests.support.imports import loaded_after

PREFIX = "atomic-reactor: error:"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """main() installs handlers and levels on the root logger; undo that after each test."""
    root = logging.getLogger()
    names = ("atomic_reactor", "urllib3", "docker")
    saved_root = (root.handlers[:], root.level)
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], root.level = saved_root[0], saved_root[1]
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def build_json(tmp_path: Path, data: Any | None = None, text: str | None = None) -> str:
    path = tmp_path / "build.json"
    if text is None:
        base: dict[str, Any] = {"source": {"provider": "path", "uri": f"file://{tmp_path}"},
                                "image": "app:1"}
        base.update(data or {})
        text = json.dumps(base, indent=2)
    path.write_text(text, encoding="utf-8")
    return str(path)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert "Traceback" not in err
    return lines[0]


# -- argparse ---------------------------------------------------------------------------------


def test_help_exits_0_quickly(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert time.monotonic() - started < 1.0
    out = capsys.readouterr().out
    assert "usage: atomic-reactor" in out
    assert "build" in out
    assert "plugins" in out


@pytest.mark.parametrize("argv", [["build", "--help"], ["build", "json", "--help"],
                                  ["build", "path", "--help"], ["plugins", "--help"]])
def test_sub_command_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([flag])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"atomic-reactor {__version__}"


def test_cli_module_import_does_not_load_heavy_modules() -> None:
    assert loaded_after(["atomic_reactor.cli.main"],
                        ["docker", "jsonschema", "requests", "atomic_reactor.inner"]) == []


@pytest.mark.parametrize("argv", [
    [],
    ["build"],
    ["build", "path"],
    ["build", "path", "--uri", "/src"],
    ["build", "path", "--image", "app:1"],
    ["build", "git", "--image", "app:1"],
    ["build", "json"],
    ["build", "svn", "--uri", "x"],
    ["frobnicate"],
    ["-v", "-q", "plugins"],
    ["build", "path", "--uri", "/src", "--image", "a", "--method", "magic"],
    ["build", "path", "--uri", "/src", "--image", "a", "--retry-attempts", "many"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "Traceback" not in err


# -- build json errors ---------------------------------------------------------------------------


def test_build_json_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    assert main(["build", "json", str(missing)]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert str(missing) in line
    assert "does not exist" in line
    assert captured.out == ""


def test_build_json_malformed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path, text='{\n  "image": "app:1",\n  "source": {\n}\n')
    assert main(["build", "json", path]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "is not valid JSON" in line
    assert "line 5" in line


def test_build_json_unknown_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path, {"imagee": "typo"})
    assert main(["build", "json", path]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"{PREFIX} build json: unknown key 'imagee'"


def test_build_json_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path, text="[1, 2]")
    assert main(["build", "json", path]) == 2
    assert "must hold a JSON object" in one_error_line(capsys.readouterr().err)


def test_build_json_unknown_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path, {"method": "teleport"})
    assert main(["build", "json", path]) == 2
    assert "unknown build method 'teleport'" in one_error_line(capsys.readouterr().err)


def test_build_json_bad_substitution(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path)
    assert main(["build", "json", path, "--substitute", "novalue"]) == 2
    assert "KEY=VALUE" in one_error_line(capsys.readouterr().err)
    assert main(["build", "json", path, "--substitute", "prebuild_plugins.x.a=1"]) == 2
    assert "no plugin 'x'" in one_error_line(capsys.readouterr().err)


def test_build_json_substitution_makes_it_invalid(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path)
    assert main(["build", "json", path, "--substitute", "image=Bad:Name"]) == 2
    assert "invalid image name" in one_error_line(capsys.readouterr().err)


def test_verbose_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build_json(tmp_path, {"bogus": 1})
    assert main(["-v", "build", "json", path]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "BuildJsonError" in err
    assert err.strip().splitlines()[-1] == f"{PREFIX} build json: unknown key 'bogus'"


def test_quiet_error_still_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "build", "json", str(tmp_path / "x.json")]) == 2
    one_error_line(capsys.readouterr().err)


# -- build path/git errors ------------------------------------------------------------------------


@pytest.mark.parametrize("image", ["Upper:1", "app:-tag", "a//b", "app@sha256:zz"])
def test_invalid_image_name(tmp_path: Path, image: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "path", "--uri", str(tmp_path), "--image", image]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"invalid image name '{image}'" in line


def test_invalid_image_name_git(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["build", "git", "--uri", "https://example.invalid/repo.git", "--image", "NO"]
    assert main(argv) == 2
    assert "invalid image name 'NO'" in one_error_line(capsys.readouterr().err)


def test_invalid_target_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["build", "path", "--uri", str(tmp_path), "--image", "app:1",
            "--target-registries", ""]
    assert main(argv) == 2
    assert "target_registries" in one_error_line(capsys.readouterr().err)


# -- plugins -----------------------------------------------------------------------------------


def test_plugins_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    phases = {}
    for line in out.splitlines():
        name, _, rest = line.partition(" ")
        phases[name] = rest.strip()
    assert phases["pull_base_image"] == "prebuild"
    assert phases["tag_and_push"] == "postbuild"


def test_plugins_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--schema", "tag_and_push"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == TagAndPushPlugin.args_schema
    assert schema["required"] == ["registries"]


def test_plugins_schema_derived(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--schema", "pull_base_image"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) == {"parent_registry", "parent_registry_insecure"}
    assert schema["additionalProperties"] is False


def test_plugins_schema_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--schema", "no_such_plugin"]) == 2
    captured = capsys.readouterr()
    assert one_error_line(captured.err) == f"{PREFIX} unknown plugin 'no_such_plugin'"
    assert captured.out == ""


@pytest.mark.parametrize("option", ["--metadata-file", "--iidfile"])
def test_unwritable_output_path_is_refused_before_building(
        option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM scratch\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    impossible = blocker / "sub" / "out.json"  # a directory cannot be made under a file
    code = main(["build", "path", "--uri", str(source), "--image", "x:1",
                 option, str(impossible)])
    assert code == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"atomic-reactor: error: {option} {impossible}: cannot create the directory "
        f"{impossible.parent} (Not a directory)")


def test_internal_error_is_one_line_and_traceback_only_with_verbose(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from atomic_reactor.cli import main as cli_main

    def broken(args: Any) -> int:
        raise TypeError("unexpected thing")

    monkeypatch.setitem(cli_main.COMMANDS, "plugins", broken)
    assert main(["plugins"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == ("atomic-reactor: internal error: TypeError: unexpected thing "
                           "(this is a bug; -v shows the traceback)")
    assert main(["-v", "plugins"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_push_options_reach_the_request(tmp_path: Path) -> None:
    from atomic_reactor.cli.main import _request_from_args, build_parser

    args = build_parser().parse_args([
        "build", "path", "--uri", str(tmp_path), "--image", "app:1",
        "--target-registries", "r:5000", "--push-method", "engine",
        "--compression", "zstd", "--compression-level", "7", "--manifest-format", "oci"])
    request, _ = _request_from_args(args)
    post = request.plugin_lists()["postbuild_plugins"]
    assert post[-1]["args"] == {"registries": {"r:5000": {"insecure": False}},
                                "push_method": "engine", "compression": "zstd",
                                "compression_level": 7, "manifest_format": "oci"}


def test_push_option_errors_are_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "path", "--uri", str(tmp_path), "--image", "app:1",
                 "--compression", "zstd", "--manifest-format", "docker"])
    assert code == 2
    assert "zstd layers need an OCI manifest" in one_error_line(capsys.readouterr().err)


def test_fast_exit_does_what_an_exit_must(tmp_path: Path) -> None:
    """run() ends the process without the interpreter's teardown, but still waits for
    other threads, runs the atexit functions (temporary directories, logging) and
    flushes the output, with main()'s exit code."""
    marker = tmp_path / "atexit-ran"
    code = textwrap.dedent(f"""
        import atexit, logging, sys, tempfile, threading, time
        import atomic_reactor.cli.main as m
        kept = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})
        atexit.register(lambda: open({str(marker)!r}, "w").close())
        handler = logging.FileHandler({str(tmp_path / "log")!r})
        logging.getLogger("t").addHandler(handler)
        logging.getLogger("t").warning("logged")
        def late():
            time.sleep(0.2)
            print("thread done")
        threading.Thread(target=late).start()
        sys.stdout.write("unflushed")
        m.main = lambda argv=None: 3
        m.run()
        print("not reached")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 3
    assert done.stdout == "unflushedthread done\n"
    assert marker.exists()
    assert (tmp_path / "log").read_text() == "logged\n"
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []  # the temporary dir is gone


def test_run_pauses_the_garbage_collector_only_while_a_command_starts() -> None:
    code = textwrap.dedent("""
        import gc, sys
        import atomic_reactor.cli.main as m
        seen = []
        def command(args):
            seen.append(gc.isenabled())
            return 0
        m.COMMANDS["plugins"] = command
        sys.argv = ["atomic-reactor", "plugins"]
        try:
            m._pause_gc()
            assert not gc.isenabled()
            m.main(["plugins"])
        finally:
            print(seen, gc.isenabled())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout.strip() == "[True] True"


@pytest.mark.parametrize(("argv", "named"), [
    (["-q", "build", "path", "--uri", "x"], ("build", "path")),
    (["build", "json", "b.json"], ("build", "json")),
    (["build", "--help"], ("build", None)),
    (["build", "bogus"], ("build", None)),
    (["-v", "worker", "--broker", "redis://x"], ("worker", None)),
    (["plugins", "--schema", "path"], ("plugins", None)),
    (["bogus", "build"], (None, None)),
    (["--", "build", "path"], (None, None)),
    ([], (None, None)),
])
def test_the_parser_knows_the_command_it_is_built_for(
        argv: list[str], named: tuple[str | None, str | None]) -> None:
    from atomic_reactor.cli.main import _named

    assert _named(argv) == named


@pytest.mark.parametrize("argv", [
    ["-q", "build", "path", "--uri", "/src", "--image", "i:1", "--engine", "buildah",
     "--build-arg", "A=1", "--no-cache", "--push-method", "engine"],
    ["build", "git", "--uri", "https://example.com/r.git", "--commit", "main", "--image",
     "i", "--reproducible", "--sbom"],
    ["build", "json", "b.json", "--substitute", "image=x", "--method", "here"],
    ["plugins", "--schema", "tag_and_push"],
    ["worker", "--concurrency", "2"],
    ["farm", "status", "--broker", "redis://127.0.0.1:1/0", "abc"],
    ["inside-build", "--input", "path"],
])
def test_a_parser_built_for_its_command_parses_as_the_whole_one(argv: list[str]) -> None:
    from atomic_reactor.cli.main import build_parser

    assert build_parser(argv).parse_args(argv) == build_parser().parse_args(argv)


def test_the_parser_for_a_build_leaves_the_other_commands_out() -> None:
    from atomic_reactor.cli.main import build_parser

    def commands(parser: Any) -> dict[str, Any]:
        action = next(action for action in parser._actions
                      if action.__class__.__name__ == "_SubParsersAction")
        return dict(action.choices)

    argv = ["build", "path", "--uri", "x", "--image", "i"]
    assert list(commands(build_parser(argv))) == ["build"]
    assert list(commands(commands(build_parser(argv))["build"])) == ["path"]
    assert len(commands(build_parser())) == 7
