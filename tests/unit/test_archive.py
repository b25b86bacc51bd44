"""``atomic_reactor._image``: safe extraction, image archives, hashing, streams."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._image.compression import detect_compression, uncompressed_layer
from atomic_reactor._image.hashing import ParallelHasher, checksum_file
from atomic_reactor._image.layout import ImageArchive
from atomic_reactor._image.tarstream import (
    ArchiveError,
    FanOut,
    StreamConsumer,
    header_bytes,
    normalize_member_name,
    prefetch,
    safe_extract,
)

# -- building archives -----------------------------------------------------------------------------


def tar_bytes(*entries: tuple[Any, ...], compress: bool = False) -> bytes:
    """Entries: ("file", name, data), ("dir", name), ("sym", name, target),
    ("link", name, target), ("chr", name), ("fifo", name)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in entries:
            kind, name = entry[0], entry[1]
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = entry[2]
                info.size = len(data)
                info.mode = entry[3] if len(entry) > 3 else 0o644
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, entry[2]
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, entry[2]
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    return gzip.compress(raw) if compress else raw


def chunks(data: bytes, size: int = 777) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): extraction goes to dest; outside must stay untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original")
    dest = tmp_path / "dest"
    return dest, outside


def outside_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "original"


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "clean"), [
    ("a/b", "a/b"), ("./a/b/", "a/b"), ("a//b/./c", "a/b/c"), ("./", ""), (".", ""),
])
def test_normalize_member_name(name: str, clean: str) -> None:
    assert normalize_member_name(name) == clean


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/..", "a\0b"])
def test_normalize_member_name_refuses(name: str) -> None:
    with pytest.raises(ArchiveError):
        normalize_member_name(name)


def test_header_bytes_drops_stale_pax_path() -> None:
    info = tarfile.TarInfo("new-name")
    info.pax_headers = {"path": "old-" + "x" * 200, "SCHILY.xattr.user.k": "v"}
    parsed = tarfile.TarInfo.frombuf(header_bytes(info)[-512:], "utf-8", "surrogateescape")
    buffer = io.BytesIO(header_bytes(info) + bytes(1024))
    with tarfile.open(fileobj=buffer) as tar:
        member = tar.getmembers()[0]
    assert member.name == "new-name"
    assert member.pax_headers["SCHILY.xattr.user.k"] == "v"
    assert parsed.name  # the ustar block itself is well formed


# -- safe extraction -------------------------------------------------------------------------------


def test_extracts_files_dirs_links(tmp_path: Path) -> None:
    data = tar_bytes(("dir", "a"), ("file", "a/f", b"hello", 0o4755), ("sym", "a/s", "f"),
                     ("link", "a/h", "a/f"), ("file", "b/deep/g", b"g"),
                     ("dir", "c"), ("sym", "c/layer.tar", "../a/f"))
    names = safe_extract(chunks(data), str(tmp_path / "x"))
    root = tmp_path / "x"
    assert (root / "a/f").read_bytes() == b"hello"
    assert os.readlink(root / "a/s") == "f"
    assert os.stat(root / "a/h").st_ino == os.stat(root / "a/f").st_ino
    assert (root / "b/deep/g").read_bytes() == b"g"
    assert (root / "c/layer.tar").read_bytes() == b"hello"
    assert os.stat(root / "a/f").st_mode & 0o7777 == 0o755  # set-id bits dropped
    assert "a/f" in names and "c/layer.tar" in names


def test_accepts_a_file_object_and_compression(tmp_path: Path) -> None:
    data = tar_bytes(("file", "f", b"zipped"), compress=True)
    safe_extract(io.BytesIO(data), str(tmp_path / "x"))
    assert (tmp_path / "x/f").read_bytes() == b"zipped"


def _long_tree() -> bytes:
    long_name = "d/" + "n" * 150 + "/file"  # a pax header for the name
    return tar_bytes(("dir", "d"), ("file", "d/big", os.urandom(300_001)),
                     ("file", "d/empty", b""), ("file", long_name, b"long"),
                     ("link", "d/big-link", "d/big"), ("file", "z", b"z" * 1025))


def _tree(root: Path) -> dict[str, bytes | str]:
    return {str(path.relative_to(root)): path.read_bytes() if path.is_file() else "dir"
            for path in sorted(root.rglob("*"))}


@pytest.mark.parametrize("piece", [511, 512, 1 << 20])
def test_every_way_in_unpacks_the_same(tmp_path: Path, piece: int) -> None:
    """Chunks of a plain tar (read forwards, data straight from the chunks), chunks of
    a gzip-compressed one and a file object give the same tree; a consumer gets each
    member's bytes, whether it reads them all, some or none."""
    data = _long_tree()
    seen: dict[str, dict[str, bytes]] = {}

    def consumer(way: str, limit: int | None) -> Any:
        def consume(name: str, member: tarfile.TarInfo, stream: Any) -> bool:
            if name != "d/big":
                return False
            got = stream.read(limit) if limit is not None else b"".join(
                iter(lambda: stream.read(4096), b""))
            seen.setdefault(way, {})[name] = got
            return True
        return consume

    ways: dict[str, Any] = {
        "plain chunks": lambda: chunks(data, piece),
        "gzip chunks": lambda: chunks(gzip.compress(data), piece),
        "file": lambda: io.BytesIO(data),
    }
    trees = {}
    for way, source in ways.items():
        trees[way] = _tree_of(safe_extract(source(), str(tmp_path / way)), tmp_path / way)
        safe_extract(source(), str(tmp_path / f"{way}-all"), consume=consumer(way, None))
        safe_extract(source(), str(tmp_path / f"{way}-some"),
                     consume=consumer(f"{way}-some", 1000))
        # consumed: an empty placeholder; the rest of the archive as without a consumer
        rest = _tree(tmp_path / f"{way}-some")
        assert rest.pop("d/big") == b"" and rest.pop("d/big-link") == b""
        full = _tree(tmp_path / way)
        del full["d/big"], full["d/big-link"]
        assert rest == full
    assert trees["plain chunks"] == trees["gzip chunks"] == trees["file"]
    big = (tmp_path / "file" / "d/big").read_bytes()
    assert len(big) == 300_001
    for way in ways:
        assert seen[way]["d/big"] == big
        assert seen[f"{way}-some"]["d/big"] == big[:1000]


def _tree_of(names: list[str], root: Path) -> tuple[list[str], dict[str, bytes | str]]:
    return names, _tree(root)


@pytest.mark.parametrize("entries", [
    [("file", "../x", b"evil")],
    [("file", "/abs", b"evil")],
    [("file", "a/../../victim", b"evil")],
    [("sym", "out", "../outside")],
    [("sym", "out", "/etc")],
    [("sym", "deep", "a/../../outside")],
], ids=["dotdot", "absolute", "nested-dotdot", "symlink-up", "symlink-absolute",
        "symlink-nested"])
def test_refuses_names_and_links_leaving(sandbox: tuple[Path, Path],
                                         entries: list[tuple[Any, ...]]) -> None:
    dest, outside = sandbox
    with pytest.raises(ArchiveError):
        safe_extract(chunks(tar_bytes(*entries)), str(dest))
    outside_untouched(outside)


def test_refuses_writing_through_a_symlink(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    # a link inside the archive first, to a place that then leads out; then a file through it
    data = tar_bytes(("dir", "d"), ("sym", "d/l", "."), ("file", "d/l/f", b"x"))
    with pytest.raises(ArchiveError, match="symbolic link"):
        safe_extract(chunks(data), str(dest))
    # a link pointing out (planted beforehand) is never followed either
    dest.mkdir(exist_ok=True)
    os.symlink(outside, dest / "planted")
    with pytest.raises(ArchiveError, match="symbolic link"):
        safe_extract(chunks(tar_bytes(("file", "planted/victim", b"evil"))), str(dest))
    outside_untouched(outside)


def test_refuses_symlink_then_file_through_it(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    data = tar_bytes(("sym", "escape", str(outside)), ("file", "escape/victim", b"evil"))
    with pytest.raises(ArchiveError):
        safe_extract(chunks(data), str(dest))
    outside_untouched(outside)


def test_refuses_link_chain_that_resolves_outside(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    # "a" looks inside on its own; once "b" -> "." exists, a = ./../outside
    data = tar_bytes(("sym", "a", "b/../outside"), ("sym", "b", "."))
    with pytest.raises(ArchiveError, match="resolves outside"):
        safe_extract(chunks(data), str(dest))
    assert not os.path.lexists(dest / "a")
    outside_untouched(outside)


def test_refuses_overwriting_through_existing_symlink(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    dest.mkdir()
    os.symlink(outside / "victim", dest / "f")
    safe_extract(chunks(tar_bytes(("file", "f", b"new"))), str(dest))
    assert not os.path.islink(dest / "f")  # the link was replaced, not followed
    assert (dest / "f").read_bytes() == b"new"
    outside_untouched(outside)


@pytest.mark.parametrize("entries", [
    [("link", "h", "../outside/victim")],
    [("link", "h", "/etc/passwd")],
    [("link", "h", "not-extracted")],
    [("sym", "s", "x"), ("link", "h", "s")],
], ids=["up", "absolute", "unknown", "to-symlink"])
def test_refuses_bad_hard_links(sandbox: tuple[Path, Path],
                                entries: list[tuple[Any, ...]]) -> None:
    dest, outside = sandbox
    with pytest.raises(ArchiveError):
        safe_extract(chunks(tar_bytes(*entries)), str(dest))
    outside_untouched(outside)


@pytest.mark.parametrize("kind", ["chr", "fifo"])
def test_refuses_devices(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ArchiveError, match="not allowed"):
        safe_extract(chunks(tar_bytes((kind, "dev"))), str(tmp_path / "x"))
    assert not os.path.lexists(tmp_path / "x/dev")


def test_refuses_replacing_a_directory(tmp_path: Path) -> None:
    data = tar_bytes(("dir", "d"), ("file", "d/f", b"f"), ("sym", "d", "elsewhere"))
    with pytest.raises(ArchiveError, match="replace a directory"):
        safe_extract(chunks(data), str(tmp_path / "x"))


def test_malformed_archive(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="malformed"):
        safe_extract(chunks(b"this is not a tar archive" * 100), str(tmp_path / "x"))


def test_producer_error_surfaces(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield tar_bytes(("file", "f", b"x" * 5000))[:1024]
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        safe_extract(broken(), str(tmp_path / "x"))


# -- image archives --------------------------------------------------------------------------------


def write_archive(root: Path, layout: str) -> list[bytes]:
    layers = [tar_bytes(("file", "one", b"1")), tar_bytes(("file", "two", b"2"))]
    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    paths = []
    root.mkdir(parents=True)
    if layout == "legacy":
        (root / f"{config_hex}.json").write_bytes(config)
        config_name = f"{config_hex}.json"
        for index, layer in enumerate(layers):
            (root / f"l{index}").mkdir()
            (root / f"l{index}/layer.tar").write_bytes(layer)
            paths.append(f"l{index}/layer.tar")
    else:
        blobs = root / "blobs/sha256"
        blobs.mkdir(parents=True)
        (blobs / config_hex).write_bytes(config)
        config_name = f"blobs/sha256/{config_hex}"
        for layer in layers:
            digest = hashlib.sha256(layer).hexdigest()
            (blobs / digest).write_bytes(layer)
            paths.append(f"blobs/sha256/{digest}")
    (root / "manifest.json").write_text(json.dumps(
        [{"Config": config_name, "RepoTags": ["a:1"], "Layers": paths}]))
    return layers


@pytest.mark.parametrize("layout", ["legacy", "oci"])
def test_image_archive_layouts(tmp_path: Path, layout: str) -> None:
    layers = write_archive(tmp_path / "img", layout)
    archive = ImageArchive.open(str(tmp_path / "img"))
    assert [Path(p).read_bytes() for p in archive.layer_files] == layers
    assert len(archive.diff_ids) == 2
    assert archive.repo_tags == ("a:1",)


@pytest.mark.parametrize("manifest", [
    [],
    [{"Config": "../c.json", "Layers": []}],
    [{"Config": "c.json", "Layers": ["/etc/passwd"]}],
    [{"Config": "c.json"}],
    "not a list",
])
def test_image_archive_refuses_bad_manifests(tmp_path: Path, manifest: Any) -> None:
    root = tmp_path / "img"
    root.mkdir()
    (root / "c.json").write_text('{"rootfs": {"diff_ids": []}}')
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArchiveError):
        ImageArchive.open(str(root))


def test_image_archive_refuses_a_layer_link_leading_out(tmp_path: Path) -> None:
    root = tmp_path / "img"
    write_archive(root, "legacy")
    (root / "l1/layer.tar").unlink()
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", root / "l1/layer.tar")
    with pytest.raises(ArchiveError, match="not a file in the archive"):
        ImageArchive.open(str(root))


def test_compressed_layers_are_detected_and_unpacked(tmp_path: Path) -> None:
    plain = tar_bytes(("file", "f", b"data"))
    (tmp_path / "plain.tar").write_bytes(plain)
    (tmp_path / "layer.gz").write_bytes(gzip.compress(plain))
    assert detect_compression(str(tmp_path / "plain.tar")) is None
    assert detect_compression(str(tmp_path / "layer.gz")) == "gzip"
    assert uncompressed_layer(str(tmp_path / "plain.tar"), str(tmp_path)) == \
        str(tmp_path / "plain.tar")
    unpacked = uncompressed_layer(str(tmp_path / "layer.gz"), str(tmp_path))
    assert Path(unpacked).read_bytes() == plain


# -- hashing and streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("threaded", [True, False])
def test_parallel_hasher(threaded: bool) -> None:
    data = os.urandom(3_000_000)
    with ParallelHasher(("sha256", "md5", "sha1"), threaded=threaded) as hasher:
        for piece in chunks(data, 100_000):
            hasher.update(piece)
        digests = hasher.hexdigests()
    assert digests == {"sha256": hashlib.sha256(data).hexdigest(),
                       "md5": hashlib.md5(data).hexdigest(),
                       "sha1": hashlib.sha1(data).hexdigest()}
    assert hasher.size == len(data)


def test_checksum_file(tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    (tmp_path / "f").write_bytes(data)
    sums = checksum_file(str(tmp_path / "f"))
    assert (sums.size, sums.sha256, sums.md5) == (
        len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())


def test_fanout_gathers_small_writes() -> None:
    seen: list[bytes] = []
    fan = FanOut([seen.append], chunk_size=1000)
    for _ in range(25):
        fan.write(b"x" * 100)
    fan.write(b"y" * 5000)
    fan.flush()
    assert b"".join(seen) == b"x" * 2500 + b"y" * 5000
    assert fan.position == 7500
    assert all(len(chunk) >= 1000 for chunk in seen[:-1])


def test_stream_consumer_result_and_errors() -> None:
    consumer = StreamConsumer(b"".join)
    for piece in (b"a", b"b", b"c"):
        consumer.send(piece)
    assert consumer.finish() == b"abc"

    def fails(it: Iterator[bytes]) -> None:
        next(it)
        raise ValueError("engine said no")

    failing: StreamConsumer[None] = StreamConsumer(fails)
    with pytest.raises(ValueError, match="engine said no"):
        for _ in range(100):
            failing.send(b"x")
        failing.finish()


def test_stream_consumer_abort() -> None:
    received: list[bytes] = []

    def consume(it: Iterator[bytes]) -> None:
        for piece in it:
            received.append(piece)

    consumer: StreamConsumer[None] = StreamConsumer(consume)
    consumer.send(b"part")
    consumer.abort()
    with pytest.raises(ArchiveError, match="aborted"):
        consumer.finish()
    assert received == [b"part"]


def test_prefetch_passes_chunks_and_errors() -> None:
    assert list(prefetch(iter([b"a", b"b"]))) == [b"a", b"b"]

    def broken() -> Iterator[bytes]:
        yield b"a"
        raise OSError("gone")

    with pytest.raises(OSError, match="gone"):
        list(prefetch(broken()))
