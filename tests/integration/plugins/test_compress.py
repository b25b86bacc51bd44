"""``compress`` through the real pipeline: decompressed output equals the original archive."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._image.hashing import checksum_file
from atomic_reactor.api import build_image_here
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage

KEY = "compress"

DOCKERFILE = """
    FROM {base}
    RUN echo one > /one && dd if=/dev/urandom of=/random bs=64k count=16 2>/dev/null
    RUN echo two > /two && rm /one
    """


def decompressed_sha256(path: Path, method: str) -> str:
    digest = hashlib.sha256()
    if method == "zstd":
        zstd = shutil.which("zstd")
        if zstd is None:
            pytest.skip("no zstd program to check the output with")
        with subprocess.Popen([zstd, "-d", "-c", str(path)], stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(1 << 20):
                digest.update(chunk)
        assert proc.returncode == 0
        return digest.hexdigest()
    opener: Any = gzip.open if method == "gzip" else lzma.open
    with opener(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def build(tmp_path: Path, base_image: BaseImage, postbuild: list[dict[str, Any]],
          prepublish: list[dict[str, Any]] | None = None) -> Any:
    context = write_context(tmp_path / "src", DOCKERFILE.format(base=base_image.repo))
    return build_image_here(source=path_source(context), image=unique("art-test-compress"),
                            parent_registry=base_image.registry.address,
                            prepublish_plugins=prepublish or [],
                            postbuild_plugins=postbuild)


@pytest.mark.parametrize("method", ["gzip", "xz", "zstd"])
def test_compresses_the_squashed_export(tmp_path: Path, base_image: BaseImage,
                                        method: str) -> None:
    if method == "zstd" and shutil.which("zstd") is None:
        pytest.importorskip("zstandard")
    export = tmp_path / "export"
    results = build(tmp_path, base_image,
                    postbuild=[{"name": KEY, "args": {"method": method}}],
                    prepublish=[{"name": "squash", "args": {"export_dir": str(export)}}])
    assert not results.is_failed(), results.error
    original, compressed = results.exported_images
    assert original.compression is None and compressed.compression == method
    outcome = results.plugin_results["postbuild"][KEY]
    path = Path(outcome["path"])
    assert path.parent == export and compressed.path == str(path)
    assert decompressed_sha256(path, method) == original.sha256sum
    sums = checksum_file(str(path))
    assert (compressed.size, compressed.sha256sum, compressed.md5sum) == (
        sums.size, sums.sha256, sums.md5)
    assert outcome["uncompressed_size"] == original.size
    assert outcome["size"] < original.size


def test_compresses_a_docker_save_of_the_built_image(tmp_path: Path,
                                                     base_image: BaseImage) -> None:
    results = build(tmp_path, base_image, postbuild=[
        {"name": KEY, "args": {"method": "gzip", "level": 1,
                               "export_dir": str(tmp_path / "out")}}])
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["postbuild"][KEY]
    assert outcome["source"] == results.image_id
    path = Path(outcome["path"])
    assert decompressed_sha256(path, "gzip") == outcome["uncompressed_sha256sum"]
    with tarfile.open(path, "r:gz") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["Config"].startswith(results.image_id.removeprefix("sha256:"))
    assert [e.compression for e in results.exported_images] == ["gzip"]


def test_load_exported_image_without_export_fails(tmp_path: Path, base_image: BaseImage) -> None:
    results = build(tmp_path, base_image, postbuild=[
        {"name": KEY, "args": {"load_exported_image": True}}])
    assert results.is_failed()
    assert "no (uncompressed) image was exported" in results.plugins_errors[KEY]
