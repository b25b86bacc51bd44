"""Layer and config normalisation for reproducible images (no engine)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from atomic_reactor._image.normalize import (
    format_epoch,
    normalize_config,
    normalize_image,
    normalize_layer_file,
)

EPOCH = 1_700_000_000


def _layer(path: Path, members: Sequence[tuple[str, str, bytes, dict[str, object]]]) -> Path:
    """A layer tar: (name, kind, data, header fields) in the order given."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, fields in members:
            info = tarfile.TarInfo(name)
            info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                         "link": tarfile.LNKTYPE, "sym": tarfile.SYMTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o644
            for key, value in fields.items():
                setattr(info, key, value)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_builds_that_differ_in_times_order_and_names_normalise_to_one_tar(
        tmp_path: Path) -> None:
    first = _layer(tmp_path / "a.tar", [
        ("etc", "dir", b"", {"mtime": EPOCH + 50}),
        ("etc/app.conf", "file", b"x=1\n", {"mtime": EPOCH + 51, "uname": "root",
                                            "pax_headers": {"atime": "1799999999.5",
                                                            "ctime": "1799999999.5"}}),
        ("bin", "dir", b"", {"mtime": EPOCH + 52}),
        ("bin/tool", "file", b"#!/bin/sh\n", {"mtime": EPOCH - 100, "uid": 7, "gid": 8}),
    ])
    second = _layer(tmp_path / "b.tar", [
        ("bin", "dir", b"", {"mtime": EPOCH + 999}),
        ("bin/tool", "file", b"#!/bin/sh\n", {"mtime": EPOCH - 100, "uid": 7, "gid": 8,
                                             "uname": "someone", "gname": "group"}),
        ("etc", "dir", b"", {"mtime": EPOCH + 998}),
        ("etc/app.conf", "file", b"x=1\n", {"mtime": EPOCH + 997.25}),
    ])
    a = normalize_layer_file(str(first), str(tmp_path / "a.norm"), EPOCH)
    b = normalize_layer_file(str(second), str(tmp_path / "b.norm"), EPOCH)
    assert _sha(first) != _sha(second)
    assert a == b
    assert _sha(tmp_path / "a.norm") == _sha(tmp_path / "b.norm") == a.diff_id[7:]
    assert (tmp_path / "a.norm").stat().st_size == a.size
    with tarfile.open(tmp_path / "a.norm") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["bin", "bin/tool", "etc", "etc/app.conf"]
        times = {m.name: m.mtime for m in members}
        assert times == {"bin": EPOCH, "bin/tool": EPOCH - 100, "etc": EPOCH,
                         "etc/app.conf": EPOCH}
        tool = tar.getmember("bin/tool")
        assert (tool.uid, tool.gid, tool.uname, tool.gname) == (7, 8, "", "")
        assert all("atime" not in m.pax_headers and "ctime" not in m.pax_headers
                   for m in members)
        conf = tar.extractfile("etc/app.conf")
        assert conf is not None and conf.read() == b"x=1\n"


def test_hard_links_point_to_the_first_name_in_the_new_order(tmp_path: Path) -> None:
    # "z/data" is the file, "a/link" (sorted first) a hard link to it
    layer = _layer(tmp_path / "l.tar", [
        ("z", "dir", b"", {}),
        ("z/data", "file", b"payload", {"mtime": EPOCH + 5}),
        ("a", "dir", b"", {}),
        ("a/link", "link", b"", {"linkname": "z/data"}),
    ])
    normalize_layer_file(str(layer), str(tmp_path / "n.tar"), EPOCH)
    with tarfile.open(tmp_path / "n.tar") as tar:
        link = tar.getmember("a/link")
        data = tar.getmember("z/data")
        assert link.isreg() and link.size == 7
        assert data.islnk() and data.linkname == "a/link"
        tar.extractall(tmp_path / "out", filter="tar")
    assert (tmp_path / "out/z/data").read_bytes() == b"payload"
    assert (tmp_path / "out/z/data").stat().st_ino == (tmp_path / "out/a/link").stat().st_ino


def test_symlinks_and_extended_attributes_are_kept(tmp_path: Path) -> None:
    layer = _layer(tmp_path / "l.tar", [
        ("usr", "dir", b"", {}),
        ("usr/ping", "file", b"elf", {"pax_headers": {
            "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}}),
        ("usr/sh", "sym", b"", {"linkname": "busybox", "mtime": EPOCH + 3}),
    ])
    normalize_layer_file(str(layer), str(tmp_path / "n.tar"), EPOCH)
    with tarfile.open(tmp_path / "n.tar") as tar:
        assert tar.getmember("usr/sh").linkname == "busybox"
        assert tar.getmember("usr/sh").mtime == EPOCH
        assert "SCHILY.xattr.security.capability" in tar.getmember("usr/ping").pax_headers


def test_config_times_and_build_container_fields() -> None:
    config = {
        "architecture": "amd64", "created": "2026-12-01T21:57:10.772111449Z",
        "container": "db02d751ca77", "container_config": {"Cmd": ["/bin/sh"]},
        "config": {"Env": ["PATH=/bin"], "Image": "sha256:7a2ab2dac7f2", "Hostname": ""},
        "history": [
            {"created": "2020-01-01T00:00:00Z", "comment": "base"},
            {"created": "2026-12-01T21:57:09.892195054Z", "created_by": "COPY"},
            {"created": "not a time", "created_by": "RUN"},
        ],
        "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]},
    }
    new = normalize_config(config, EPOCH, ["sha256:aa", "sha256:cc"])
    stamp = format_epoch(EPOCH)
    assert stamp == "2023-11-14T22:13:20Z"
    assert new["created"] == stamp
    assert [h["created"] for h in new["history"]] == ["2020-01-01T00:00:00Z", stamp, stamp]
    assert "container" not in new and "container_config" not in new
    assert new["config"] == {"Env": ["PATH=/bin"]}
    assert new["rootfs"]["diff_ids"] == ["sha256:aa", "sha256:cc"]
    assert config["created"] == "2026-12-01T21:57:10.772111449Z"  # the input is not changed


def _docker_archive(layers: Sequence[bytes], config: dict[str, object]) -> bytes:
    """A ``docker save`` archive (legacy layout) of ``layers`` (bottom first)."""
    buffer = io.BytesIO()
    names = []
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        # directories in another order than the layers, as docker writes them
        for index, blob in sorted(enumerate(layers), key=lambda item: -item[0]):
            name = f"{hashlib.sha256(blob).hexdigest()}/layer.tar"
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            names.append((index, name))
        full = dict(config)
        full["rootfs"] = {"type": "layers",
                          "diff_ids": ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]}
        payload = json.dumps(full).encode()
        for member, data in (("config.json", payload), ("manifest.json", json.dumps(
                [{"Config": "config.json",
                  "Layers": [name for _, name in sorted(names)]}]).encode())):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_saved_image_is_normalised_and_loaded_with_the_base_layer_untouched(
        tmp_path: Path) -> None:
    base = (_layer(tmp_path / "base.tar", [("bin", "dir", b"", {"mtime": EPOCH + 9})])
            .read_bytes())
    archives = []
    for run, offset in enumerate((10, 20)):
        new = _layer(tmp_path / f"new{run}.tar", [
            ("srv/app", "file", b"app", {"mtime": EPOCH + offset}),
            ("srv", "dir", b"", {"mtime": EPOCH + offset})]).read_bytes()
        saved = _docker_archive([base, new], {
            "created": f"2026-12-01T21:00:{offset}Z", "container": f"c{run}",
            "history": [{"created": "2020-01-01T00:00:00Z"},
                        {"created": f"2026-12-01T21:00:{offset}Z"}]})
        loaded: list[bytes] = []

        def save(image: str, data: bytes = saved) -> list[bytes]:
            return [data]

        def load(chunks: Iterator[bytes], into: list[bytes] = loaded) -> None:
            into.append(b"".join(chunks))

        result = normalize_image(save, load, "app:1", ["app:1"],
                                 base_diff_ids=["sha256:" + hashlib.sha256(base).hexdigest()],
                                 epoch=EPOCH, scratch_dir=str(tmp_path / f"scratch{run}"))
        assert result.rewritten_layers == 1
        archives.append((result, loaded[0]))
    (first, first_bytes), (second, second_bytes) = archives
    assert first.image_id == second.image_id != first.original_image_id
    assert first_bytes == second_bytes
    with tarfile.open(fileobj=io.BytesIO(first_bytes)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = [tar.extractfile(name).read() for name in manifest[0]["Layers"]]  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["app:1"]
    assert layers[0] == base
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()
                                            for layer in layers]
    assert "sha256:" + hashlib.sha256(
        json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest() == first.image_id
    with tarfile.open(fileobj=io.BytesIO(layers[1])) as tar:
        assert [(m.name, m.mtime) for m in tar] == [("srv", EPOCH), ("srv/app", EPOCH)]
