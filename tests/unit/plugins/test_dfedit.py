"""atomic_reactor._dockerfile.edit: Dockerfile editing helpers (no engine)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from atomic_reactor._dockerfile import edit as _dfedit
from atomic_reactor._reference import ImageName
from atomic_reactor.errors import DockerfileError, ImageNotFound
from tests.unit.plugins.dockerfile_fakes import fake_tasker, image


def _df(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


# -- quoting ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "quoted"), [
    ("plain", "'plain'"),
    ("", "''"),
    ('say "hi"', "'say \"hi\"'"),
    ("$HOME ${X}", "'$HOME ${X}'"),
    ("back\\slash", "'back\\slash'"),
    ("it's", "'it'\"'\"'s'"),
    ("tab\there", "'tab\there'"),
    ("ünïcödé `x`", "'ünïcödé `x`'"),
])
def test_quote(value: str, quoted: str) -> None:
    assert _dfedit.quote(value) == quoted


def test_quote_needs_no_escape_character() -> None:
    # the same word under either escape directive (buildah ignores the directive)
    assert _dfedit.quote("it's") == _dfedit.quote("it's", escape="`") == "'it'\"'\"'s'"


@pytest.mark.parametrize("value", ["two\nlines", "cr\r", "nul\0", "bell\x07"])
def test_quote_refuses_control_characters(value: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        _dfedit.quote(value)


def test_label_instruction_keeps_order() -> None:
    assert _dfedit.label_instruction({"b": "1", "a b": 'x"y'}) == "LABEL 'b'='1' 'a b'='x\"y'"
    with pytest.raises(ValueError):
        _dfedit.label_instruction({})


def test_copy_instruction() -> None:
    assert _dfedit.copy_instruction("a b", "/x/a b") == 'COPY ["a b", "/x/a b"]'
    with pytest.raises(ValueError, match=r"\$"):
        _dfedit.copy_instruction("a", "/$HOME/x")
    with pytest.raises(ValueError):
        _dfedit.copy_instruction("a\nb", "/x")


@pytest.mark.parametrize(("text", "token"), [
    ("FROM a\n", "\\"),
    ("# escape=`\nFROM a\n", "`"),
    ("#escape = `\n", "`"),
    ("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n", "`"),
    ("# a comment\n# escape=`\nFROM a\n", "\\"),   # directives end at the first comment
    ("FROM a\n# escape=`\n", "\\"),
    ("# escape=x\nFROM a\n", "\\"),
])
def test_escape_token(text: str, token: str) -> None:
    assert _dfedit.escape_token(text) == token


# -- editing ------------------------------------------------------------------------------

def test_append_lines_adds_a_missing_newline_and_keeps_the_mode(tmp_path: Path) -> None:
    path = _df(tmp_path, "FROM a\nCMD x")
    path.chmod(0o640)
    _dfedit.append_lines(path, ["LABEL a=b", "COPY x /x\n"])
    assert path.read_text() == "FROM a\nCMD x\nLABEL a=b\nCOPY x /x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["Dockerfile"]   # no temporary file left


def test_append_lines_refuses_a_trailing_continuation(tmp_path: Path) -> None:
    path = _df(tmp_path, "FROM a\nRUN echo \\\n# comment\n\n")
    with pytest.raises(DockerfileError, match="line continuation"):
        _dfedit.append_lines(path, ["LABEL a=b"])
    backtick = _df(tmp_path, "# escape=`\nFROM a\nRUN echo `\n")
    with pytest.raises(DockerfileError):
        _dfedit.append_lines(backtick, ["LABEL a=b"])


def test_append_lines_refuses_multi_line_instructions(tmp_path: Path) -> None:
    path = _df(tmp_path, "FROM a\n")
    with pytest.raises(ValueError):
        _dfedit.append_lines(path, ["LABEL a=b\nRUN x"])
    assert path.read_text() == "FROM a\n"


def test_insert_after_last_from(tmp_path: Path) -> None:
    path = _df(tmp_path, "FROM a AS one\nRUN x\nFROM b \\\n  AS two\nRUN y\n")
    _dfedit.insert_after_last_from(path, ["LABEL a=b"])
    assert path.read_text() == "FROM a AS one\nRUN x\nFROM b \\\n  AS two\nLABEL a=b\nRUN y\n"
    last = _df(tmp_path, "FROM a")
    _dfedit.insert_after_last_from(last, ["ENV X=1"])
    assert last.read_text() == "FROM a\nENV X=1\n"


def test_rewrite_from_keeps_flags_alias_and_case() -> None:
    text = ("ARG B=x\n"
            "FROM --platform=$BUILDPLATFORM ${B} AS build\n"
            "RUN true\n"
            "  from   c:1 \\\n    as   other\n"
            "FROM build\n")
    once = _dfedit.rewrite_from(text, 0, "sha256:" + "a" * 64)
    assert once.splitlines()[1] == f"FROM --platform=$BUILDPLATFORM sha256:{'a' * 64} AS build"
    twice = _dfedit.rewrite_from(once, 1, "sha256:" + "b" * 64)
    assert twice.splitlines()[3] == f"  from sha256:{'b' * 64} as other"
    assert twice.splitlines()[4] == "FROM build"
    assert len(twice.splitlines()) == 5
    with pytest.raises(DockerfileError, match="no stage 3"):
        _dfedit.rewrite_from(text, 3, "x")


# -- labels ---------------------------------------------------------------------------

def test_final_stage_labels_follow_stage_references(tmp_path: Path) -> None:
    path = _df(tmp_path, """\
ARG VERSION=1.0
FROM a AS base
ENV VENDOR=acme
LABEL vendor=$VENDOR shared=base
FROM b AS unrelated
LABEL unrelated=yes
FROM base
ARG VERSION
LABEL version=$VERSION shared=final home="$HOME" multi=one \\
      more=two
""")
    labels = _dfedit.final_stage_labels(path, {"VERSION": "2.0"}, {"HOME": "/root"})
    assert labels == {"vendor": "acme", "shared": "final", "version": "2.0",
                      "home": "/root", "multi": "one", "more": "two"}
    assert _dfedit.final_stage_labels(path)["version"] == "1.0"


def test_final_stage_labels_only_the_final_stage(tmp_path: Path) -> None:
    path = _df(tmp_path, "FROM a\nLABEL first=1\nFROM b\nLABEL second=2\n")
    assert _dfedit.final_stage_labels(path) == {"second": "2"}


def test_labels_written_are_read_back(tmp_path: Path) -> None:
    values = {"q": 'say "hi"', "d": "$HOME", "b": "a\\b", "s": "a b", "e": "",
              "a": "it's", "m": "'\\' \"${X}\" `y`"}
    path = _df(tmp_path, "FROM a\n")
    _dfedit.append_lines(path, [_dfedit.label_instruction(values)])
    assert _dfedit.final_stage_labels(path, base_env={"HOME": "/root"}) == values


def test_aliases() -> None:
    assert _dfedit.alias_partners("name") == ["name", "Name"]
    assert _dfedit.alias_partners("Name") == ["name", "Name"]
    assert _dfedit.alias_partners("other") == ["other"]
    assert _dfedit.preferred_label({"Name": "old", "name": "new"}, "name") == ("name", "new")
    assert _dfedit.preferred_label({"Name": "old", "name": " "}, "name") == ("Name", "old")
    assert _dfedit.preferred_label({"Name": "old"}, "Name") == ("Name", "old")
    assert _dfedit.preferred_label({}, "name") is None


def test_base_image_config() -> None:
    tasker = fake_tasker({"a:1": image("sha256:1", {"l": "v"}, {"PATH": "/bin", "E": "x=y"})})
    builder = SimpleNamespace(base_image=ImageName.parse("a:1"),
                              base_info=lambda: tasker.image_info("a:1"))
    config = _dfedit.base_image_config(builder, "plug")  # type: ignore[arg-type]
    assert config == _dfedit.BaseImageConfig(image="a:1", labels={"l": "v"},
                                             env={"PATH": "/bin", "E": "x=y"})
    scratch = SimpleNamespace(base_image=None)
    assert _dfedit.base_image_config(scratch, "plug").labels == {}  # type: ignore[arg-type]
    missing = SimpleNamespace(base_image=ImageName.parse("b:1"),
                              base_info=lambda: tasker.image_info("b:1"))
    with pytest.raises(ImageNotFound, match=r"plug: the base image b:1 is not on the engine"):
        _dfedit.base_image_config(missing, "plug")  # type: ignore[arg-type]


def test_ensure_in_context(tmp_path: Path) -> None:
    assert _dfedit.ensure_in_context(tmp_path, ["x"]) == []
    assert not (tmp_path / ".dockerignore").exists()
    (tmp_path / ".dockerignore").write_text("*")
    assert _dfedit.ensure_in_context(tmp_path, ["x", "y"]) == ["!x", "!y"]
    assert _dfedit.ensure_in_context(tmp_path, ["x"]) == []
    assert (tmp_path / ".dockerignore").read_text() == "*\n!x\n!y\n"
