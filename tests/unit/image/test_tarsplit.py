"""The tar-split format (``_image/tarsplit.py``), on hand-made layers: the tar put back
together, its length known beforehand, the check against the diff id; and what dockerd's
reader derives from an image (chain ids, the names docker save writes)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from atomic_reactor._engine.docker import storage
from atomic_reactor._engine.docker.engine import _repo_tags
from atomic_reactor._engine.storage import StorageUnsupported
from atomic_reactor._image import tarsplit
from atomic_reactor.errors import EngineError
from tests.unit.test_buildah_storage import make_layer, tar_split


def _write_lines(path: Path, *entries: dict[str, object]) -> str:
    path.write_bytes(gzip.compress(b"".join(json.dumps(e).encode() + b"\n" for e in entries)))
    return str(path)


def test_the_tar_comes_back_and_its_size_is_known_first(tmp_path: Path) -> None:
    diff = tmp_path / "diff"
    diff.mkdir()
    data = make_layer(diff)
    (tmp_path / "split.gz").write_bytes(tar_split(data))
    split = str(tmp_path / "split.gz")
    assert tarsplit.tar_size(split) == len(data)
    assert b"".join(tarsplit.layer_tar(split, str(diff))) == data
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert b"".join(tarsplit.verified(tarsplit.layer_tar(split, str(diff)), len(data),
                                      digest, layer="l1")) == data


def test_a_stream_that_is_not_the_diff_id_fails_at_its_end(tmp_path: Path) -> None:
    chunks = [b"a" * 10, b"b" * 10]
    with pytest.raises(EngineError, match=r"^docker storage: layer l1 .*not its diff id"):
        list(tarsplit.verified(iter(chunks), 20, "sha256:" + "0" * 64, layer="l1",
                               label="docker storage"))
    passed: list[bytes] = []
    with pytest.raises(EngineError, match="size differs"):
        passed.extend(tarsplit.verified(iter(chunks), 15, "sha256:" + "0" * 64, layer="l1"))
    assert passed == [b"a" * 10]  # nothing past the size the layer has


def test_bad_lines_are_engine_errors_that_name_the_line(tmp_path: Path) -> None:
    unknown = _write_lines(tmp_path / "unknown.gz", {"type": 2, "payload": ""},
                           {"type": 7})
    with pytest.raises(EngineError, match="line 2 has an unknown entry type 7"):
        tarsplit.tar_size(unknown, label="docker storage")
    not_base64 = _write_lines(tmp_path / "b64.gz", {"type": 2, "payload": "!!"})
    with pytest.raises(EngineError, match="line 1 has a payload that is not base64"):
        list(tarsplit.layer_tar(not_base64, str(tmp_path)))
    (tmp_path / "json.gz").write_bytes(gzip.compress(b"{not json\n"))
    with pytest.raises(EngineError, match="line 1 is not a tar-split entry"):
        tarsplit.tar_size(str(tmp_path / "json.gz"))
    (tmp_path / "cut.gz").write_bytes(gzip.compress(b'{"type": 2}\n' * 100)[:-12])
    with pytest.raises(EngineError, match="ends early"):
        tarsplit.tar_size(str(tmp_path / "cut.gz"))
    escape = _write_lines(tmp_path / "escape.gz",
                          {"type": 1, "name": "../outside", "size": 3})
    with pytest.raises(EngineError, match="not a file of the layer"):
        list(tarsplit.layer_tar(escape, str(tmp_path / "diff")))


def test_a_name_that_is_not_utf8_is_read_by_its_raw_bytes(tmp_path: Path) -> None:
    diff = tmp_path / "diff"
    diff.mkdir()
    (diff / b"odd-\xff".decode("utf-8", "surrogateescape")).write_bytes(b"xyz")
    split = _write_lines(tmp_path / "raw.gz", {"type": 2, "payload": base64.b64encode(
        b"HEAD").decode()}, {"type": 1, "name": "odd-?", "size": 3,
                             "name_raw": base64.b64encode(b"odd-\xff").decode()})
    assert b"".join(tarsplit.layer_tar(split, str(diff))) == b"HEADxyz"
    assert tarsplit.tar_size(split) == 7


def test_chain_ids_follow_dockerd() -> None:
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    ab = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    abc = "sha256:" + hashlib.sha256(f"{ab} {c}".encode()).hexdigest()
    assert storage.chain_ids([a, b, c]) == [a, ab, abc]
    assert storage.chain_ids([]) == []


def test_the_repo_tags_docker_save_writes() -> None:
    image_id = "sha256:" + "ab12" * 16
    assert _repo_tags("busybox", image_id) == ("busybox:latest",)
    assert _repo_tags("localhost:5000/a/b", image_id) == ("localhost:5000/a/b:latest",)
    assert _repo_tags("localhost:5000/a/b:1", image_id) == ("localhost:5000/a/b:1",)
    assert _repo_tags(image_id, image_id) == ()
    assert _repo_tags("ab12ab12ab12", image_id) == ()
    assert _repo_tags("a/b@sha256:" + "0" * 64, image_id) == ()


def test_a_storage_that_is_not_overlay2_or_not_here_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(StorageUnsupported, match="driver 'btrfs'"):
        storage.DockerStorage(str(tmp_path), "btrfs")
    with pytest.raises(StorageUnsupported, match="not a readable overlay2 storage"):
        storage.DockerStorage(str(tmp_path), "overlay2")
    for upper in ("", "relative/overlay2/x/diff", "/var/lib/docker/vfs/dir/x",
                  "/var/lib/docker/overlay2/x/merged"):
        inspect = {"GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": upper}}}
        with pytest.raises(StorageUnsupported, match="no overlay2 layer directory"):
            storage.DockerStorage.of_inspect(inspect)
    with pytest.raises(StorageUnsupported, match="not a sha256 digest"):
        (tmp_path / "image/overlay2/imagedb/content/sha256").mkdir(parents=True)
        (tmp_path / "image/overlay2/layerdb/sha256").mkdir(parents=True)
        storage.DockerStorage(str(tmp_path), "overlay2").layers("sha256:../../etc")


def _docker_root(root: Path) -> tuple[str, bytes]:
    """A hand-made dockerd data root holding one image of one layer; its id, its tar."""
    diff = root / "overlay2" / "cache1" / "diff"
    diff.mkdir(parents=True)
    data = make_layer(diff)
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    layer_dir = root / "image/overlay2/layerdb/sha256" / diff_id[7:]
    layer_dir.mkdir(parents=True)
    (layer_dir / "diff").write_text(diff_id)
    (layer_dir / "cache-id").write_text("cache1")
    (layer_dir / "tar-split.json.gz").write_bytes(tar_split(data))
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    image_hex = hashlib.sha256(config).hexdigest()
    images = root / "image/overlay2/imagedb/content/sha256"
    images.mkdir(parents=True)
    (images / image_hex).write_bytes(config)
    return "sha256:" + image_hex, data


def test_a_hand_made_docker_storage_is_streamed_and_checked(tmp_path: Path) -> None:
    import io
    import tarfile

    image_id, data = _docker_root(tmp_path)
    inspect = {"GraphDriver": {"Name": "overlay2", "Data": {
        "UpperDir": str(tmp_path / "overlay2" / "cache1" / "diff")}}}
    reader = storage.DockerStorage.of_inspect(inspect)
    assert reader.root == str(tmp_path)
    stream = b"".join(reader.docker_archive(image_id, ("unit:1",)))
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    assert layer == data and manifest[0]["RepoTags"] == ["unit:1"]
    layer_dir = next((tmp_path / "image/overlay2/layerdb/sha256").iterdir())
    (layer_dir / "cache-id").write_text("../../etc")
    with pytest.raises(StorageUnsupported, match="cache id"):
        reader.layers(image_id)
    (layer_dir / "cache-id").write_text("cache1")
    (layer_dir / "diff").write_text("sha256:" + "0" * 64)
    with pytest.raises(StorageUnsupported, match="its diff is"):
        reader.layers(image_id)
    (layer_dir / "diff").write_text("sha256:" + hashlib.sha256(data).hexdigest())
    (tmp_path / "overlay2/cache1/diff/etc/hello").write_bytes(b"HELLO\n")  # changed
    with pytest.raises(EngineError, match=r"docker storage: layer .* not its diff id"):
        b"".join(reader.docker_archive(image_id))
    config_path = next((tmp_path / "image/overlay2/imagedb/content/sha256").iterdir())
    config_path.write_bytes(b"{}")
    with pytest.raises(StorageUnsupported, match="its config is not its id"):
        reader.layers(image_id)
    config_path.unlink()
    with pytest.raises(StorageUnsupported, match="No such file"):
        reader.layers(image_id)


def test_pieces_join_small_chunks_and_pass_big_ones() -> None:
    small, big = b"s" * 300, b"B" * 1000
    out = list(tarsplit.pieces(iter([small, small, big, small, small, small, small]),
                               size=1000))
    assert out == [small * 2, big, small * 4]
    assert list(tarsplit.pieces(iter([]))) == []
