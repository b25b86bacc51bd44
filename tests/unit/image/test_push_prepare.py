"""prepare_image streams the layers of both engines' docker-archive layouts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from atomic_reactor._image.push import PushSettings, _stream_layer_name, prepare_image


def _layer_tar() -> bytes:
    """A layer tar of more than 1 MiB (streamed layers start at 1 MiB)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = os.urandom(1 << 20) + b"x" * (1 << 19)
        info = tarfile.TarInfo("big")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _archive(layout: str) -> tuple[bytes, str]:
    """A docker-archive as ``docker save`` (20.10) or ``buildah push docker-archive:``
    writes it; (the archive, the name the layer is streamed under)."""
    layer = _layer_tar()
    diff_id = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}}
                        ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = "d" * 64
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        if layout == "buildah":  # the data first, under its digest; the legacy name links
            _add(tar, f"{diff_id}.tar", layer)
            _add(tar, config_name, config)
            link = tarfile.TarInfo(f"{layer_dir}/layer.tar")
            link.type = tarfile.SYMTYPE
            link.linkname = f"../{diff_id}.tar"
            tar.addfile(link)
            streamed = diff_id
        else:
            _add(tar, f"{layer_dir}/layer.tar", layer)
            _add(tar, config_name, config)
            streamed = layer_dir
        _add(tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": ["x:1"],
                                                "Layers": [f"{layer_dir}/layer.tar"]}]
                                              ).encode())
    return out.getvalue(), streamed


@pytest.mark.parametrize("layout", ["docker", "buildah"])
def test_layer_is_compressed_from_the_stream(tmp_path: Path, layout: str) -> None:
    archive, streamed = _archive(layout)
    asked: list[str] = []
    learned: dict[str, str] = {}

    def live(name: str, size: int) -> list[object]:
        asked.append(name)
        assert size > 1 << 20
        return []

    prepared = prepare_image([archive], str(tmp_path), PushSettings(), live=live,  # type: ignore[arg-type]
                             learned=learned)
    assert asked == [streamed]
    assert learned == {streamed: prepared.layers[0].digest}
    assert len(prepared.layers) == 1 and prepared.diff_ids[0].startswith("sha256:")


@pytest.mark.parametrize(("name", "expected"), [
    ("abc/layer.tar", "abc"),
    ("a" * 64 + ".tar", "a" * 64),
    ("a" * 64 + ".json", None),
    ("manifest.json", None),
    ("blobs/sha256/" + "a" * 64, None),
    ("x.tar", None),
])
def test_stream_layer_name(name: str, expected: str | None) -> None:
    assert _stream_layer_name(name) == expected


@pytest.mark.parametrize("layout", ["docker", "buildah"])
def test_a_layer_pushed_before_comes_from_the_store(tmp_path: Path, layout: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer no live upload takes is compressed once, kept in the store and taken from
    there the next time (the same blob); the config and the layer are announced early."""
    from atomic_reactor._image import push
    from atomic_reactor._image.blobcache import BlobStore
    from atomic_reactor._registry.upload import Blob

    archive, _ = _archive(layout)
    store = BlobStore(tmp_path / "store")
    announced: list[Blob] = []
    first = prepare_image([archive], str(tmp_path / "one"), PushSettings(), store=store,
                          live=lambda name, size: [], early=announced.append)
    assert len(os.listdir(tmp_path / "store")) == 1
    assert {blob.digest for blob in announced} == {first.config.digest,
                                                   first.layers[0].digest}

    def no_compression(*args: object, **kwargs: object) -> object:
        raise AssertionError("compressed again")

    monkeypatch.setattr(push, "_compress_into", no_compression)
    again = prepare_image([archive], str(tmp_path / "two"), PushSettings(), store=store,
                          live=lambda name, size: [])
    assert again.manifest == first.manifest
    # the push's own file (a link to the kept one): a trim of the store cannot take it
    path = str(again.layers[0].path)
    assert path.startswith(str(tmp_path / "two"))
    kept = list(os.scandir(tmp_path / "store"))
    assert os.stat(path).st_ino == kept[0].stat().st_ino


def test_the_store_is_per_compression(tmp_path: Path) -> None:
    from atomic_reactor._image.blobcache import BlobStore

    archive, _ = _archive("docker")
    store = BlobStore(tmp_path / "store")
    gzip = prepare_image([archive], str(tmp_path / "one"), PushSettings(), store=store)
    zstd = prepare_image([archive], str(tmp_path / "two"), PushSettings(compression="zstd"),
                         store=store)
    level = prepare_image([archive], str(tmp_path / "three"), PushSettings(level=1),
                          store=store)
    assert len({gzip.layers[0].digest, zstd.layers[0].digest, level.layers[0].digest}) == 3
    assert len(os.listdir(tmp_path / "store")) == 3


def test_small_layers_are_not_kept(tmp_path: Path) -> None:
    from atomic_reactor._image.blobcache import BlobStore

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        _add(tar, "small", b"x" * 1000)
    diff_id = hashlib.sha256(layer.getvalue()).hexdigest()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}}
                        ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add(tar, f"{'e' * 64}/layer.tar", layer.getvalue())
        _add(tar, config_name, config)
        _add(tar, "manifest.json", json.dumps([{"Config": config_name,
                                                "Layers": [f"{'e' * 64}/layer.tar"]}]
                                              ).encode())
    store = BlobStore(tmp_path / "store")
    prepare_image([out.getvalue()], str(tmp_path / "one"), PushSettings(), store=store)
    assert not (tmp_path / "store").exists()
