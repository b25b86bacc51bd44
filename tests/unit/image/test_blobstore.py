"""The blob store: compressed layers kept by uncompressed digest and compression."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from atomic_reactor._image import compression
from atomic_reactor._image.blobcache import BlobStore
from atomic_reactor._image.compression import compress_stream, planned_tool


def _blob(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_kept_blob_is_found_with_its_digest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    into = str(tmp_path / "mine")
    key = store.key("sha256:" + "a" * 64, "gzip", None, "pigz")
    assert store.get(key, into) is None
    digest = _blob(tmp_path / "blob", b"compressed bytes")
    store.put(key, str(tmp_path / "blob"), digest)
    path, found, size = store.get(key, into) or ("", "", 0)
    assert (path, found, size) == (into, digest, len(b"compressed bytes"))
    assert Path(path).read_bytes() == b"compressed bytes"
    # another compression of the same layer is another entry
    assert store.get(store.key("sha256:" + "a" * 64, "gzip", 9, "pigz"), into) is None
    assert store.get(store.key("sha256:" + "a" * 64, "zstd", None, "zstd"), into) is None


def test_a_blob_handed_out_survives_a_trim(tmp_path: Path) -> None:
    """What a push got from the store is its own file: another push trimming the store
    to nothing meanwhile does not take it away."""
    store = BlobStore(tmp_path / "store")
    key = store.key("sha256:" + "d" * 64, "gzip", None, "pigz")
    store.put(key, str(tmp_path / "blob"), _blob(tmp_path / "blob", b"y" * 1000))
    path, _, _ = store.get(key, str(tmp_path / "mine")) or ("", "", 0)
    BlobStore(tmp_path / "store", limit=1)._trim()
    assert store._find(key) is None  # gone from the store
    assert Path(path).read_bytes() == b"y" * 1000  # still there for the push


def test_a_kept_blob_is_copied_where_it_cannot_be_linked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path / "store")
    key = store.key("sha256:" + "e" * 64, "gzip", None, "pigz")
    digest = _blob(tmp_path / "blob", b"z" * 3000)
    store.put(key, str(tmp_path / "blob"), digest)

    def cross_device(source: str, target: str) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    path, found, size = store.get(key, str(tmp_path / "mine")) or ("", "", 0)
    assert (found, size) == (digest, 3000)
    assert Path(path).read_bytes() == b"z" * 3000
    kept = store._find(key)
    assert kept is not None and os.stat(kept[0]).st_ino != os.stat(path).st_ino


def test_a_damaged_blob_is_dropped(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    key = store.key("sha256:" + "b" * 64, "gzip", None, "pigz")
    store.put(key, str(tmp_path / "blob"), _blob(tmp_path / "blob", b"x" * 1000))
    found = store._find(key)
    assert found is not None
    os.unlink(found[0])  # the store holds a link: write a new file in its place
    Path(found[0]).write_bytes(b"x" * 999)
    assert store.get(key, str(tmp_path / "mine")) is None
    assert not Path(found[0]).exists()
    assert not (tmp_path / "mine").exists()


def test_the_oldest_blobs_go_past_the_limit(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store", limit=2500)
    keys = [store.key(f"sha256:{n:064x}", "gzip", None, "pigz") for n in range(3)]
    for age, key in enumerate(keys):
        blob = tmp_path / f"blob-{age}"
        store.put(key, str(blob), _blob(blob, bytes([age]) * 1000))
        found = store._find(key)
        assert found is not None
        os.utime(found[0], (1000 + age, 1000 + age))
    store._trim()
    into = str(tmp_path / "mine")
    assert store.get(keys[0], into) is None  # the oldest went
    assert store.get(keys[1], into) is not None and store.get(keys[2], into) is not None


def test_a_store_of_size_zero_keeps_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store", limit=0)
    key = store.key("sha256:" + "c" * 64, "gzip", None, "pigz")
    store.put(key, str(tmp_path / "blob"), _blob(tmp_path / "blob", b"data"))
    assert store.get(key, str(tmp_path / "mine")) is None
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("fallback", [False, True], ids=["program", "python"])
@pytest.mark.parametrize("method", ["gzip", "zstd"])
def test_planned_tool_is_the_tool_used(method: str, fallback: bool, adaptive: bool,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if fallback:
        monkeypatch.setattr(compression, "_which", lambda program: None)
    planned = planned_tool(method, adaptive=adaptive)
    if planned is None:
        pytest.skip(f"no {method} here")
    used = compress_stream(io.BytesIO(b"layer " * 1000), lambda data: None, method,
                           adaptive=adaptive)
    assert planned == used
