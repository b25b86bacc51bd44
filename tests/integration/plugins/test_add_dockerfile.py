"""add_dockerfile: the Dockerfile ends up inside the built image."""

from __future__ import annotations

from pathlib import Path

from atomic_reactor.core import DockerTasker
from tests.integration.plugins.dockerfile_helpers import (
    build,
    exists_in_image,
    push_parent,
    read_in_image,
    write_context,
)
from tests.support.env import BaseImage

KEY = "add_dockerfile"


def test_snapshot_named_by_labels_is_in_the_image(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    dockerfile = (f"FROM {base_image.repo}\n"
                  "LABEL name=ns/app version=1.0 release=3\n"
                  "USER nobody\n"
                  "WORKDIR /tmp\n")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    (context / ".dockerignore").write_text("*\n")   # the copy must get in all the same
    results = build(base_image, context, [
        {"name": KEY},
        # changes after the snapshot: not in the copy
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"late": "1"},
                                                      "auto_labels": [], "aliases": {}}},
    ])

    assert not results.is_failed(), results.error
    path = "/root/buildinfo/Dockerfile-ns-app-1.0-3"
    assert read_in_image(tasker, str(results.image_id), path).decode() == dockerfile
    result = results.plugin_results["prebuild"][KEY]
    assert result == {"path": path, "source": "Dockerfile-ns-app-1.0-3", "nvr": "ns-app-1.0-3",
                      "final": False,
                      "instruction": f'COPY ["Dockerfile-ns-app-1.0-3", "{path}"]'}


def test_final_dockerfile_with_nvr_argument(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image.repo}\nCMD [\"sh\"]\n",
                            {".dockerignore": "*\n!keep\n", "keep": "k"})
    results = build(base_image, context, [
        {"name": KEY, "args": {"nvr": "my app-2-1", "destdir": "/usr/share/buildinfo",
                               "use_final_dockerfile": True}},
        {"name": "add_labels_in_dockerfile", "args": {"labels": {"late": "1"},
                                                      "auto_labels": [], "aliases": {}}},
    ])

    assert not results.is_failed(), results.error
    content = read_in_image(tasker, str(results.image_id),
                            "/usr/share/buildinfo/Dockerfile-my app-2-1").decode()
    assert content == results.dockerfile               # the Dockerfile as built ...
    assert "LABEL 'late'='1'" in content                # ... with the later changes
    assert 'COPY ["Dockerfile", "/usr/share/buildinfo/Dockerfile-my app-2-1"]' in content


def test_labels_inherited_from_the_parent_name_the_file(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    parent = push_parent(tasker, base_image, "FROM {base}\nLABEL Name=base Version=9\n")
    context = write_context(tmp_path / "ctx", f"FROM {parent}\nLABEL Release=2\n")
    results = build(base_image, context, [{"name": KEY}])
    assert not results.is_failed(), results.error
    assert exists_in_image(tasker, str(results.image_id), "/root/buildinfo/Dockerfile-base-9-2")


def test_missing_labels_fail_with_a_clear_message(
        tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image.repo}\nLABEL name=x\n")
    results = build(base_image, context, [{"name": KEY}])
    assert results.is_failed()
    assert results.image_id is None                    # nothing was built
    assert results.error is not None
    assert results.error["plugin"] == KEY
    assert results.error["exit_code"] == 2             # an input problem, not a crash
    assert "version, release labels" in results.error["message"]
    assert "pass nvr" in results.error["message"]
