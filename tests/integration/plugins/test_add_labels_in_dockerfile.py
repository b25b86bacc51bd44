"""add_labels_in_dockerfile through the real pipeline: labels checked on the built image."""

from __future__ import annotations

import re
from pathlib import Path

from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import git, git_repo, unique, write_context
from tests.integration.plugins.dockerfile_helpers import build, labels_of, push_parent
from tests.support.env import BaseImage

KEY = "add_labels_in_dockerfile"


def test_labels_and_automatic_labels_on_the_built_image(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    tricky = 'say "hi" to $HOME \\ and `you` ${X} it\'s \'q\''
    context = write_context(tmp_path / "ctx", f"""
        FROM {base_image.repo}
        LABEL name=from-dockerfile keep=me
        RUN echo built > /built
        CMD ["sh"]
    """)
    results = build(base_image, context, [{"name": KEY, "args": {
        "labels": {"name": "explicit", "tricky": tricky, "with space": "a b", "empty": ""},
    }}])

    assert not results.is_failed(), results.error
    labels = labels_of(tasker, str(results.image_id))
    assert labels["name"] == "explicit"            # explicit labels overwrite the Dockerfile's
    assert "Name" not in labels                    # aliases go old -> new only (1.6)
    assert labels["keep"] == "me"
    assert labels["tricky"] == tricky              # quoting: no expansion, no splitting
    assert labels["with space"] == "a b"
    assert labels["empty"] == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["build-date"])
    host = tasker.engine_host()
    assert host.name
    assert labels["com.redhat.build-host"] == host.name
    assert "Build_Host" not in labels              # the old name: aliases go old -> new
    arch = host.platform.architecture
    expected_arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    assert labels["architecture"] == expected_arch
    assert "Architecture" not in labels
    assert "vcs-ref" not in labels                 # a path source has no VCS info

    result = results.plugin_results["prebuild"][KEY]
    assert result["labels"]["tricky"] == tricky
    assert "keep" not in result["labels"]
    assert result["instruction"].startswith("LABEL ")
    # the LABEL went to the end of the Dockerfile that was built
    assert results.dockerfile is not None
    assert results.dockerfile.rstrip().splitlines()[-1] == result["instruction"]


def test_vcs_labels_from_a_git_source(tasker: DockerTasker, base_image: BaseImage,
                                      tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", f"FROM {base_image.repo}\nCMD [\"sh\"]\n")
    commit = git(repo, "rev-parse", "HEAD")
    results = build_image_here(
        source={"provider": "git", "uri": str(repo)}, image=f"{unique()}:1",
        parent_registry=base_image.registry.address,
        prebuild_plugins=[{"name": KEY, "args": {"auto_labels": ["vcs-type", "vcs-url",
                                                                 "vcs-ref"]}}])
    assert not results.is_failed(), results.error
    labels = labels_of(tasker, str(results.image_id))
    assert labels["vcs-type"] == "git"
    assert labels["vcs-ref"] == commit
    assert labels["vcs-url"] == str(repo)
    assert "build-date" not in labels              # not requested


def test_dont_overwrite_keeps_the_parents_and_dockerfiles_values(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    parent = push_parent(tasker, base_image, """
        FROM {base}
        LABEL architecture=parent-arch vendor=parent-vendor Version=7
    """)
    context = write_context(tmp_path / "ctx", f"""
        FROM {parent}
        LABEL com.example.pinned=from-dockerfile
        CMD ["sh"]
    """)
    results = build(base_image, context, [{"name": KEY, "args": {
        "labels": {"vendor": "child-vendor", "com.example.pinned": "from-plugin",
                   "architecture": "explicit-arch"},
        "dont_overwrite": ["architecture", "Architecture", "com.example.pinned"],
        "auto_labels": ["architecture"],
    }}])

    assert not results.is_failed(), results.error
    labels = labels_of(tasker, str(results.image_id))
    assert labels["architecture"] == "parent-arch"          # base image's value kept
    assert labels["com.example.pinned"] == "from-dockerfile"  # Dockerfile's value kept
    assert labels["vendor"] == "child-vendor"                # not protected: overwritten
    assert "Vendor" not in labels                            # aliases: old -> new only
    assert labels["version"] == "7"                          # alias of the parent's Version
    result = results.plugin_results["prebuild"][KEY]
    assert result["kept"] == {"architecture": "parent-arch",
                              "com.example.pinned": "from-dockerfile"}


def test_multi_stage_labels_land_in_the_final_image_only(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"""
        FROM {base_image.repo} AS builder
        RUN echo x > /x
        FROM {base_image.repo}
        COPY --from=builder /x /x
        LABEL stage=final
    """)
    results = build(base_image, context, [{"name": KEY, "args": {
        "labels": {"release": "3"}, "auto_labels": []}}])
    assert not results.is_failed(), results.error
    labels = labels_of(tasker, str(results.image_id))
    assert labels["release"] == "3"
    assert "Release" not in labels  # aliases go old -> new only (1.6)
    assert labels["stage"] == "final"


def test_nothing_to_add_leaves_the_dockerfile_alone(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    dockerfile = f'FROM {base_image.repo}\nLABEL a=b\n'
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    results = build(base_image, context, [{"name": KEY, "args": {
        "labels": {"a": "b"}, "auto_labels": [], "aliases": {}}}])
    assert not results.is_failed(), results.error
    assert results.dockerfile == dockerfile
    assert results.plugin_results["prebuild"][KEY] == {"labels": {}, "kept": {},
                                                       "instruction": None}


def test_backtick_escape_directive(tasker: DockerTasker, base_image: BaseImage,
                                   tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(f"# escape=`\nFROM {base_image.repo}\n")
    value = "it's C:\\dir `x` $Y"
    results = build(base_image, context, [{"name": KEY, "args": {
        "labels": {"path": value}, "auto_labels": []}}])
    assert not results.is_failed(), results.error
    assert labels_of(tasker, str(results.image_id))["path"] == value
    assert results.plugin_results["prebuild"][KEY]["instruction"] == \
        "LABEL 'path'='it'\"'\"'s C:\\dir `x` $Y'"
