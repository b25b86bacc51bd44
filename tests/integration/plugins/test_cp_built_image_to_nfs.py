"""``cp_built_image_to_nfs`` through the real pipeline, into plain directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atomic_reactor._image.hashing import checksum_file
from atomic_reactor.api import build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage

KEY = "cp_built_image_to_nfs"

DOCKERFILE = """
    FROM {base}
    RUN echo one > /one
    RUN echo two > /two
    """


def build(tmp_path: Path, base_image: BaseImage, args: dict[str, Any]) -> Any:
    context = write_context(tmp_path / "src", DOCKERFILE.format(base=base_image.repo))
    return build_image_here(
        source=path_source(context), image=unique("art-test-cp"),
        parent_registry=base_image.registry.address,
        prepublish_plugins=[{"name": "squash",
                             "args": {"export_dir": str(tmp_path / "export")}}],
        postbuild_plugins=[{"name": KEY, "args": args}])


def test_copies_the_squashed_image(tmp_path: Path, base_image: BaseImage) -> None:
    target = tmp_path / "nfs" / "root"
    results = build(tmp_path, base_image, {"nfs_server_path": str(target),
                                           "dest_dir": "builds/1", "create_dir": True})
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["postbuild"][KEY]
    copy = target / "builds" / "1" / "image.tar"
    assert outcome["path"] == str(copy)
    exported = results.exported_images[-1]
    assert checksum_file(str(copy)).sha256 == exported.sha256sum == outcome["sha256sum"]
    assert outcome["nfs_server"] is None


def test_missing_directory_fails_the_build(tmp_path: Path, base_image: BaseImage) -> None:
    results = build(tmp_path, base_image, {"nfs_server_path": str(tmp_path / "absent")})
    assert results.is_failed()
    assert "create_dir" in results.plugins_errors[KEY]
    assert not (tmp_path / "absent").exists()


def test_unmounted_share_fails_the_build(tmp_path: Path, base_image: BaseImage) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    results = build(tmp_path, base_image, {"nfs_server_path": "nfs.invalid:/exports",
                                           "mountpoint": str(mountpoint)})
    assert results.is_failed()
    assert "not mounted" in results.plugins_errors[KEY]
    assert list(mountpoint.iterdir()) == []
