"""Unit tests of Dockerfile reading and FROM stages (_dockerfile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atomic_reactor._dockerfile.parse import (
    MAX_DOCKERFILE_BYTES,
    Stage,
    external_images,
    final_base,
    parse_stages,
    read_dockerfile,
)
from atomic_reactor.errors import DockerfileError, InputError


def dockerfile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text, encoding="utf-8")
    return path


# -- parse_stages ----------------------------------------------------------------------------


def test_single_stage(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, "FROM fedora:39\nRUN true\n"))
    assert stages == [Stage(index=0, image="fedora:39", alias=None, stage_ref=None, line=0)]
    assert stages[0].is_external
    assert external_images(stages) == ["fedora:39"]
    assert final_base(stages) == "fedora:39"


def test_multi_stage_with_aliases_and_refs(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, (
        "# syntax=docker/dockerfile:1\n"
        "FROM golang:1.22 AS build\n"
        "RUN go build\n"
        "FROM build AS test\n"
        "RUN go test\n"
        "FROM registry.example.com:5000/base/ubi9:latest\n"
        "COPY --from=build /out /out\n"
    ))
    stages = parse_stages(path)
    assert [(s.index, s.image, s.alias, s.stage_ref, s.line) for s in stages] == [
        (0, "golang:1.22", "build", None, 1),
        (1, "build", "test", 0, 3),
        (2, "registry.example.com:5000/base/ubi9:latest", None, None, 5),
    ]
    assert [s.is_external for s in stages] == [True, False, True]
    assert external_images(stages) == ["golang:1.22",
                                       "registry.example.com:5000/base/ubi9:latest"]
    assert final_base(stages) == "registry.example.com:5000/base/ubi9:latest"


def test_final_base_follows_stage_refs(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, (
        "FROM fedora:39 AS base\nFROM base AS mid\nFROM alpine AS other\nFROM mid\n")))
    assert [s.stage_ref for s in stages] == [None, 0, None, 1]
    assert final_base(stages) == "fedora:39"
    assert external_images(stages) == ["fedora:39", "alpine"]


def test_external_images_once_each(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, "FROM a AS one\nFROM b\nFROM a\n"))
    assert external_images(stages) == ["a", "b"]


def test_alias_case_insensitive(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, "from fedora as Builder\nfrom BUILDER\n"))
    assert stages[0].alias == "Builder"
    assert stages[1].stage_ref == 0
    assert not stages[1].is_external


def test_stage_name_shadows_image(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, "FROM fedora AS fedora\nFROM fedora\n"))
    assert stages[1].stage_ref == 0
    assert external_images(stages) == ["fedora"]


def test_later_alias_is_not_a_reference(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, "FROM later\nFROM alpine AS later\n"))
    assert stages[0].stage_ref is None
    assert stages[0].is_external


def test_scratch(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "FROM fedora AS b\nFROM scratch\nCOPY --from=b / /\n")
    stages = parse_stages(path)
    assert stages[1].image == "scratch"
    assert not stages[1].is_external
    assert external_images(stages) == ["fedora"]
    assert final_base(stages) == "scratch"


def test_platform_flag(tmp_path: Path) -> None:
    stages = parse_stages(dockerfile(tmp_path, (
        "FROM --platform=linux/amd64 fedora:39 AS build\n"
        "FROM --platform=$BUILDPLATFORM alpine\n")))
    assert [(s.image, s.alias) for s in stages] == [("fedora:39", "build"), ("alpine", None)]


def test_arg_substitution_default(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "ARG BASE=fedora:39\nARG TAG=3.19\nFROM $BASE AS b\n"
                                "FROM alpine:${TAG}\n")
    stages = parse_stages(path)
    assert [s.image for s in stages] == ["fedora:39", "alpine:3.19"]
    assert stages[0].alias == "b"


def test_arg_substitution_build_args_override(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "ARG BASE=fedora:39\nFROM ${BASE}\n")
    assert parse_stages(path, {"BASE": "centos:7"})[0].image == "centos:7"
    assert parse_stages(path, {})[0].image == "fedora:39"
    assert parse_stages(path)[0].image == "fedora:39"


def test_arg_substituted_stage_ref(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "ARG STAGE=build\nFROM fedora AS build\nFROM $STAGE\n")
    stages = parse_stages(path)
    assert stages[1].image == "build"
    assert stages[1].stage_ref == 0


def test_line_continuation_and_comments(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "# a comment\n\nFROM \\\n  fedora:39 \\\n  AS b\nRUN true\n")
    stages = parse_stages(path)
    assert [(s.image, s.alias, s.line) for s in stages] == [("fedora:39", "b", 2)]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM fedora:39 AS b\r\nRUN true\r\nFROM b\r\n")
    stages = parse_stages(path)
    assert [(s.image, s.alias, s.stage_ref) for s in stages] == [("fedora:39", "b", None),
                                                                  ("b", None, 0)]


def test_accepts_str_path(tmp_path: Path) -> None:
    assert parse_stages(str(dockerfile(tmp_path, "FROM a\n")))[0].image == "a"


def test_arg_default_modifier(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "ARG BASE\nFROM ${BASE:-alpine}\n")
    assert parse_stages(path)[0].image == "alpine"


def test_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"\xef\xbb\xbfFROM fedora:39\n")
    assert [s.image for s in parse_stages(path)] == ["fedora:39"]


def test_from_undefined_arg_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match="line 1"):
        parse_stages(dockerfile(tmp_path, "FROM $UNDEFINED\n"))


def test_no_from(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_stages(dockerfile(tmp_path, "# nothing\nRUN true\nLABEL a=b\n"))
    assert "has no FROM instruction" in str(info.value)
    assert info.value.exit_code == 2
    assert isinstance(info.value, InputError)


def test_parse_stages_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match="no Dockerfile at"):
        parse_stages(tmp_path / "Dockerfile")


# -- read_dockerfile -------------------------------------------------------------------------


def test_read_dockerfile(tmp_path: Path) -> None:
    path = dockerfile(tmp_path, "FROM fedora\nLABEL x=\"ünïcode\"\n")
    assert read_dockerfile(path) == "FROM fedora\nLABEL x=\"ünïcode\"\n"


def test_read_missing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        read_dockerfile(path)
    assert f"no Dockerfile at {path}" in str(info.value)


@pytest.mark.parametrize("text", ["", "\n", "   \n\t\n"])
def test_read_empty(tmp_path: Path, text: str) -> None:
    with pytest.raises(DockerfileError, match="Dockerfile Dockerfile is empty"):
        read_dockerfile(dockerfile(tmp_path, text))


def test_read_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM fedora\nLABEL a=\xff\n")
    with pytest.raises(DockerfileError) as info:
        read_dockerfile(path)
    assert "not UTF-8" in str(info.value)
    assert "offset 20" in str(info.value)


def test_read_too_big(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM fedora\n" + b"#" * MAX_DOCKERFILE_BYTES)
    with pytest.raises(DockerfileError) as info:
        read_dockerfile(path)
    message = str(info.value)
    assert str(MAX_DOCKERFILE_BYTES + 12) in message
    assert f"the limit is {MAX_DOCKERFILE_BYTES}" in message


def test_read_exactly_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    content = b"FROM fedora\n" + b"#" * (MAX_DOCKERFILE_BYTES - 12)
    path.write_bytes(content)
    assert len(read_dockerfile(path)) == MAX_DOCKERFILE_BYTES
