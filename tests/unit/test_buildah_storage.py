"""Reading an image from a hand-made containers/storage tree: tar-split re-assembly,
the docker-archive stream, its checks, and the storage's read locks."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from atomic_reactor._engine.buildah import storage
from atomic_reactor._image.layout import ImageArchive
from atomic_reactor._image.tarstream import safe_extract
from atomic_reactor.errors import EngineError, ImageNotFound

LONG = "deep/" + "x" * 120 + "/file"  # over 100 characters: a PAX header of its own


def make_layer(diff: Path) -> bytes:
    """A layer tar (directory, files, empty file, symlink, hard link, long name) and its
    files under ``diff``, as a diff directory holds them."""
    out = io.BytesIO()
    files = {"etc/hello": b"hello\n", "big": os.urandom(70_000), "empty": b"", LONG: b"long"}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("etc", "deep", "deep/" + "x" * 120):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            (diff / directory).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            (diff / name).write_bytes(data)
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "etc/hello"
        tar.addfile(link)
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "big"
        tar.addfile(hard)
    return out.getvalue()


def tar_split(data: bytes) -> bytes:
    """The tar-split lines of the tar ``data`` (raw bytes as type 2, file contents named
    by type 1 entries), gzipped."""
    lines: list[dict[str, object]] = []
    position = 0

    def raw(end: int) -> None:
        nonlocal position
        if end > position:
            lines.append({"type": 2, "payload": base64.b64encode(data[position:end]).decode()})
        position = max(position, end)

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            raw(member.offset_data)
            entry: dict[str, object] = {"type": 1, "name": member.name}
            if member.isreg() and member.size:
                entry["size"] = member.size
                position = member.offset_data + member.size
            lines.append(entry)
    raw(len(data))
    return gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def make_storage(root: Path, layers: int = 2) -> tuple[str, list[bytes]]:
    """An overlay storage with one image of ``layers`` layers: (image id, layer tars)."""
    (root / "overlay-layers").mkdir(parents=True)
    (root / "overlay-images").mkdir()
    for lock in ("overlay-layers/layers.lock", "overlay-images/images.lock"):
        (root / lock).touch()
    records, tars, parent = [], [], None
    for index in range(layers):
        layer_id = hashlib.sha256(f"layer-{index}".encode()).hexdigest()
        diff = root / "overlay" / layer_id / "diff"
        diff.mkdir(parents=True)
        data = make_layer(diff)
        tars.append(data)
        (root / "overlay-layers" / f"{layer_id}.tar-split.gz").write_bytes(tar_split(data))
        records.append({"id": layer_id, "parent": parent, "diff-size": len(data),
                        "diff-digest": "sha256:" + hashlib.sha256(data).hexdigest()})
        parent = layer_id
    (root / "overlay-layers" / "layers.json").write_text(json.dumps(records))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [r["diff-digest"] for r in records]}}).encode()
    image_id = hashlib.sha256(config).hexdigest()
    key = "=" + base64.b64encode(f"sha256:{image_id}".encode()).decode()
    (root / "overlay-images" / image_id).mkdir()
    (root / "overlay-images" / image_id / key).write_bytes(config)
    (root / "overlay-images" / "images.json").write_text(json.dumps([{
        "id": image_id, "names": ["localhost/unit:1"], "layer": parent,
        "big-data-names": [f"sha256:{image_id}"]}]))
    return image_id, tars


def test_tar_split_gives_back_the_exact_tar(tmp_path: Path) -> None:
    diff = tmp_path / "diff"
    diff.mkdir()
    data = make_layer(diff)
    (tmp_path / "split.gz").write_bytes(tar_split(data))
    assert b"".join(storage.layer_tar(str(tmp_path / "split.gz"), str(diff))) == data


def test_docker_archive_of_the_storage(tmp_path: Path) -> None:
    image_id, tars = make_storage(tmp_path / "root")
    reader = storage.ImageStorage(str(tmp_path / "root"), "overlay")
    stream = reader.docker_archive("localhost/unit:1", ["localhost/unit:1"])
    safe_extract(stream, str(tmp_path / "out"))
    archive = ImageArchive.open(str(tmp_path / "out"))
    assert hashlib.sha256(archive.config_bytes).hexdigest() == image_id
    assert [Path(path).read_bytes() for path in archive.layer_files] == tars
    assert archive.repo_tags == ("localhost/unit:1",)
    by_prefix = reader.image(image_id[:12])
    assert by_prefix.id == image_id and len(by_prefix.layers) == 2
    with pytest.raises(ImageNotFound):
        reader.image("localhost/other:1")


def test_a_changed_file_fails_the_stream(tmp_path: Path) -> None:
    _, _ = make_storage(tmp_path / "root", layers=1)
    reader = storage.ImageStorage(str(tmp_path / "root"), "overlay")
    layer = reader.image("localhost/unit:1").layers[0]
    (Path(reader.diff_dir(layer.id)) / "etc/hello").write_bytes(b"HELLO\n")
    with pytest.raises(EngineError, match="not its diff id"):
        b"".join(reader.docker_archive("localhost/unit:1"))
    (Path(reader.diff_dir(layer.id)) / "etc/hello").write_bytes(b"hi\n")
    with pytest.raises(EngineError, match="shorter than"):
        b"".join(reader.docker_archive("localhost/unit:1"))


def test_a_layer_removed_under_the_stream_is_an_engine_error(tmp_path: Path) -> None:
    """The image was found, then its layer went (removed by another process while a push
    reads it): the stream ends with the engine's error, not an OSError."""
    make_storage(tmp_path / "root", layers=1)
    reader = storage.ImageStorage(str(tmp_path / "root"), "overlay")
    stream = reader.docker_archive("localhost/unit:1")
    for split in (tmp_path / "root" / "overlay-layers").glob("*.tar-split.gz"):
        split.unlink()
    with pytest.raises(EngineError, match=r"buildah storage: reading image \w{12}: "):
        b"".join(stream)


def test_a_symlink_out_of_the_layer_is_not_followed(tmp_path: Path) -> None:
    """An entry under a directory that is a symlink out of the diff directory (a layer's
    ``a -> /outside``, then ``a/secret``) is refused before a byte of it is yielded; so is
    a symlink as the file itself."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host secret\n")
    diff = tmp_path / "diff"
    diff.mkdir()
    (diff / "a").symlink_to(outside)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a/secret")
        info.size = len(b"host secret\n")
        tar.addfile(info, io.BytesIO(b"host secret\n"))
    (tmp_path / "split.gz").write_bytes(tar_split(out.getvalue()))
    chunks: list[bytes] = []
    with pytest.raises(EngineError, match="leads out of the layer"):
        for chunk in storage.layer_tar(str(tmp_path / "split.gz"), str(diff)):
            chunks.append(chunk)
    assert not any(b"host secret" in chunk for chunk in chunks)
    (diff / "a").unlink()
    (diff / "a").mkdir()
    (diff / "a" / "secret").symlink_to(outside / "secret")
    with pytest.raises(EngineError, match="cannot read"):
        b"".join(storage.layer_tar(str(tmp_path / "split.gz"), str(diff)))


def test_unreadable_storage_is_unsupported(tmp_path: Path) -> None:
    make_storage(tmp_path / "root", layers=1)
    with pytest.raises(storage.StorageUnsupported, match="driver 'btrfs'"):
        storage.ImageStorage(str(tmp_path / "root"), "btrfs")
    with pytest.raises(storage.StorageUnsupported, match="option"):
        storage.ImageStorage(str(tmp_path / "root"), "overlay", ["overlay.imagestore=/x"])
    layers = tmp_path / "root" / "overlay-layers" / "layers.json"
    records = json.loads(layers.read_text())
    records[0]["diff-digest"] = "sha256:" + "0" * 64
    layers.write_text(json.dumps(records))
    with pytest.raises(storage.StorageUnsupported, match="diff ids"):
        storage.ImageStorage(str(tmp_path / "root"), None).image("localhost/unit:1")


LOCK_PROBE = """
import fcntl, sys
with open(sys.argv[1], "rb+") as handle:
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print("held")
    else:
        print("free")
"""


def probe(path: Path) -> str:
    return subprocess.run([sys.executable, "-c", LOCK_PROBE, str(path)], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_read_locks_are_held_while_reading_each_layer_and_none_between(
        tmp_path: Path) -> None:
    _, tars = make_storage(tmp_path / "root")
    reader = storage.ImageStorage(str(tmp_path / "root"), "overlay")
    locks = [tmp_path / "root" / "overlay-layers/layers.lock",
             tmp_path / "root" / "overlay-images/images.lock"]
    stream = reader.docker_archive("localhost/unit:1")
    assert [probe(lock) for lock in locks] == ["free", "free"]
    # (what the piece is, which locks a writer finds held while the reader has it)
    seen: list[tuple[str, list[str]]] = []
    for piece in stream:
        kind = "layer" if piece in tars else "header" if len(piece) % 512 == 0 else "other"
        seen.append((kind, [probe(lock) for lock in locks]))
    layers = [states for kind, states in seen if kind == "layer"]
    assert len(layers) == 2
    assert all(states == ["held", "free"] for states in layers)  # rmi waits; commits not
    assert all(states == ["free", "free"] for kind, states in seen if kind == "header")
    assert [probe(lock) for lock in locks] == ["free", "free"]


def test_a_second_reader_keeps_the_lock_the_first_lets_go(tmp_path: Path) -> None:
    _, tars = make_storage(tmp_path / "root", layers=1)
    reader = storage.ImageStorage(str(tmp_path / "root"), "overlay")
    layers_lock = tmp_path / "root" / "overlay-layers/layers.lock"
    first, second = reader.docker_archive("localhost/unit:1"), \
        reader.docker_archive("localhost/unit:1")
    while next(first) not in tars:
        pass
    while next(second) not in tars:
        pass
    assert probe(layers_lock) == "held"
    first.close()  # another reader in this process still holds it
    assert probe(layers_lock) == "held"
    b"".join(second)
    assert probe(layers_lock) == "free"


def test_a_layer_removed_while_the_image_is_read_ends_the_stream(tmp_path: Path) -> None:
    make_storage(tmp_path / "root")
    reader = storage.ImageStorage(str(tmp_path / "root"), "overlay")
    stream = reader.docker_archive("localhost/unit:1")
    next(stream)  # the config: the image and its layers were read
    layers = tmp_path / "root" / "overlay-layers" / "layers.json"
    records = json.loads(layers.read_text())
    layers.write_text(json.dumps(records[:1]))  # the top layer is gone (an rmi)
    with pytest.raises(EngineError, match=f"reading image .*: layer {records[1]['id'][:12]} "
                                          "was removed while the image was read"):
        b"".join(stream)


def test_the_engine_reads_a_storage_it_can_and_falls_back_otherwise(tmp_path: Path) -> None:
    from atomic_reactor._engine.buildah import BuildahEngine

    image_id, _ = make_storage(tmp_path / "root", layers=1)
    engine = BuildahEngine(root=str(tmp_path / "root"), storage_driver="overlay")
    stream = engine._storage_archive("unit:1")  # the name as buildah qualifies it
    assert stream is not None and b"".join(stream)
    assert engine._storage_archive(image_id[:12]) is not None
    assert engine._storage_archive("other:1") is None  # buildah's archive says why
    other = BuildahEngine(root=str(tmp_path / "root"), storage_driver="btrfs")
    assert other._storage_archive(image_id) is None
