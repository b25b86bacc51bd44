"""``atomic_reactor._image``: layouts, manifests, deterministic tars, compression."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile
import zlib
from pathlib import Path

import pytest

from atomic_reactor._image import compression
from atomic_reactor._image.compression import compress_stream, method_of
from atomic_reactor._image.hashing import file_digest, sha256_digest
from atomic_reactor._image.layout import (
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
    DockerArchiveWriter,
    ImageArchive,
    image_manifest,
    layer_media_type,
    write_oci_layout,
)
from atomic_reactor._image.tarstream import (
    CHUNK_SIZE,
    ArchiveError,
    TarWriter,
    normalized_info,
    safe_extract,
)


def a_layer(*files: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_layer_media_types() -> None:
    assert layer_media_type("docker", "gzip") == DOCKER_LAYER_GZIP
    assert layer_media_type("docker", "none") == DOCKER_LAYER_TAR
    assert layer_media_type("oci", "zstd") == OCI_LAYER_ZSTD
    with pytest.raises(ValueError, match="zstd layers need an OCI manifest"):
        layer_media_type("docker", "zstd")


def test_image_manifest_shapes() -> None:
    config = Descriptor(OCI_CONFIG, sha256_digest(b"{}"), 2)
    layer = Descriptor(OCI_LAYER_GZIP, sha256_digest(b"x"), 1)
    subject = Descriptor(OCI_MANIFEST, sha256_digest(b"image"), 5)
    data = json.loads(image_manifest("oci", config, [layer], subject=subject,
                                     artifact_type="application/spdx+json",
                                     annotations={"a": "b"}))
    assert data["mediaType"] == OCI_MANIFEST and data["schemaVersion"] == 2
    assert data["subject"] == {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": 5}
    assert data["artifactType"] == "application/spdx+json"
    assert data["layers"] == [{"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": 1}]
    docker = json.loads(image_manifest("docker", config, [layer]))
    assert docker["mediaType"] == DOCKER_MANIFEST and "subject" not in docker
    with pytest.raises(ValueError, match="OCI manifest"):
        image_manifest("docker", config, [layer], subject=subject)


def test_docker_archive_written_and_read_back(tmp_path: Path) -> None:
    layers = [a_layer(("a", b"one")), a_layer(("b", b"two"))]
    (tmp_path / "l0.tar").write_bytes(layers[0])
    diff_ids = [sha256_digest(layer) for layer in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    out = io.BytesIO()
    writer = DockerArchiveWriter(out.write)
    writer.add_layer_file("l0/layer.tar", str(tmp_path / "l0.tar"))
    writer.begin_layer("l1/layer.tar", len(layers[1]))
    out.write(layers[1])
    writer.end_layer()
    image_id = writer.finish(config, ["example.com/x:1"])
    assert image_id == sha256_digest(config)
    safe_extract(io.BytesIO(out.getvalue()), str(tmp_path / "unpacked"))
    archive = ImageArchive.open(str(tmp_path / "unpacked"))
    assert archive.layout == "docker" and archive.repo_tags == ("example.com/x:1",)
    assert [Path(path).read_bytes() for path in archive.layer_files] == layers
    assert archive.diff_ids == diff_ids and archive.layer_compression(0) is None


def test_oci_layout_written_and_read_back(tmp_path: Path) -> None:
    layer = a_layer(("etc/hello", b"hi"))
    packed = gzip.compress(layer, mtime=0)
    (tmp_path / "layer.gz").write_bytes(packed)
    config = json.dumps({"rootfs": {"type": "layers",
                                    "diff_ids": [sha256_digest(layer)]}}).encode()
    config_desc = Descriptor(OCI_CONFIG, sha256_digest(config), len(config))
    layer_desc = Descriptor(OCI_LAYER_GZIP, *file_digest(str(tmp_path / "layer.gz")))
    manifest = image_manifest("oci", config_desc, [layer_desc])
    descriptor = write_oci_layout(str(tmp_path / "oci"), manifest,
                                  {config_desc.digest: config,
                                   layer_desc.digest: str(tmp_path / "layer.gz")},
                                  ref_name="latest")
    assert descriptor.digest == sha256_digest(manifest)
    archive = ImageArchive.open(str(tmp_path / "oci"))
    assert archive.layout == "oci" and archive.repo_tags == ("latest",)
    assert archive.config_bytes == config
    assert archive.layer_compression(0) == "gzip"
    assert Path(archive.layer_files[0]).read_bytes() == packed


def test_oci_layout_refuses_a_blob_outside(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text(json.dumps(
        {"manifests": [{"digest": "sha256:../../etc/passwd"}]}))
    with pytest.raises(ArchiveError):
        ImageArchive.open(str(tmp_path))


def test_normalized_info_and_tar_writer_are_deterministic() -> None:
    def make(mtime: float, uname: str) -> bytes:
        info = tarfile.TarInfo("usr/bin/tool")
        info.size = 3
        info.mtime = mtime
        info.uname = uname
        info.pax_headers = {"atime": "123.5", "SCHILY.xattr.user.k": "v"}
        out = io.BytesIO()
        writer = TarWriter(out.write)
        writer.add(normalized_info(info, mtime=1000), b"abc")
        writer.close()
        return out.getvalue()

    first, second = make(2_000_000.25, "alice"), make(3_000_000.0, "bob")
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        member = tar.getmembers()[0]
        assert member.mtime == 1000 and member.uname == ""
        assert member.pax_headers.get("SCHILY.xattr.user.k") == "v"
        assert "atime" not in member.pax_headers
    older = tarfile.TarInfo("x")
    older.mtime = 5
    assert normalized_info(older, mtime=1000).mtime == 5
    assert normalized_info(older, mtime=1000, clamp=False).mtime == 1000


@pytest.mark.parametrize("fallback", [False, True], ids=["program", "python"])
@pytest.mark.parametrize("method", ["gzip", "xz"])
def test_compression_is_deterministic(method: str, fallback: bool,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if fallback:
        monkeypatch.setattr(compression, "_which", lambda program: None)
    payload = hashlib.sha256(b"seed").digest() * 200_000

    def run() -> bytes:
        out = bytearray()
        compress_stream(io.BytesIO(payload), out.extend, method, 1)
        return bytes(out)

    first = run()
    assert first == run()
    if method == "gzip":
        assert first[4:8] == b"\0\0\0\0"  # no time
        assert not first[3] & 0x08  # no file name
        assert gzip.decompress(first) == payload
    else:
        assert lzma.decompress(first) == payload


def test_zstd_with_the_program() -> None:
    if compression._which("zstd") is None:
        pytest.skip("zstd is not installed")
    payload = b"layer " * 100_000
    out = bytearray()
    assert compress_stream(io.BytesIO(payload), out.extend, "zstd") == "zstd"
    assert bytes(out[:4]) == b"\x28\xb5\x2f\xfd"


def test_methods() -> None:
    found = method_of("lzma")
    assert found is not None and found.name == "xz"
    assert method_of("brotli") is None


def _zlib_gzip(block: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(block) + compressor.flush()


def test_adaptive_gzip_stores_what_does_not_compress() -> None:
    noise = os.urandom(6 << 20)
    text = b"".join(b"line %d of a text file\n" % i for i in range(300_000))
    for data, stored in ((noise, True), (text, False), (noise[:5 << 20] + text, None)):
        out = bytearray()
        assert compress_stream(io.BytesIO(data), out.extend, "gzip", 6,
                               adaptive=True) == "python-zlib-ng-adaptive"
        assert gzip.decompress(bytes(out)) == data
        again = bytearray()
        compress_stream(io.BytesIO(data), again.extend, "gzip", 6, adaptive=True)
        assert again == out  # deterministic
        if stored is True:
            assert len(data) < len(out) < len(data) * 1.001
        elif stored is False:
            assert len(out) < len(data) / 5


def test_portable_gzip_is_the_system_zlib_and_zlib_ng_is_as_small() -> None:
    """zlib-ng (a dependency) deflates our pushes' layers; a reproducible build asks
    for the system's zlib, whose output does not depend on the CPU."""
    text = b"".join(b"%d: the line of a text file, number %x\n" % (i, i * 7919)
                    for i in range(400_000))
    outputs: dict[bool, bytes] = {}
    for portable, tool in ((False, "python-zlib-ng-adaptive"), (True, "python-zlib-adaptive")):
        out = bytearray()
        assert compress_stream(io.BytesIO(text), out.extend, "gzip", 6, adaptive=True,
                               portable=portable) == tool
        assert gzip.decompress(bytes(out)) == text
        outputs[portable] = bytes(out)
    # the system zlib's blocks: what zlib itself makes of each 4 MiB block
    block = 4 * CHUNK_SIZE
    expected = b"".join(_zlib_gzip(text[i:i + block]) for i in range(0, len(text), block))
    assert outputs[True] == expected
    assert len(outputs[False]) < len(outputs[True]) * 1.05  # as small, within 5 %
