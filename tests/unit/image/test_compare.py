"""Comparing two image archives: which files and config fields differ (no engine)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from atomic_reactor._image.compare import compare_archives
from atomic_reactor._image.layout import ImageArchive

Member = tuple[str, bytes, Mapping[str, Any]]


def _layer_bytes(members: Sequence[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, fields in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            info.mtime = 1000
            for key, value in fields.items():
                setattr(info, key, value)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _archive(root: Path, layers: Sequence[Sequence[Member]], config: Mapping[str, Any]
             ) -> ImageArchive:
    root.mkdir()
    blobs = [_layer_bytes(layer) for layer in layers]
    names = []
    for index, blob in enumerate(blobs):
        (root / f"l{index}").mkdir()
        (root / f"l{index}" / "layer.tar").write_bytes(blob)
        names.append(f"l{index}/layer.tar")
    full = dict(config)
    full["rootfs"] = {"type": "layers",
                      "diff_ids": ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]}
    full["history"] = [{"created_by": f"step {i}"} for i in range(len(blobs))]
    (root / "c.json").write_text(json.dumps(full))
    (root / "manifest.json").write_text(json.dumps([{"Config": "c.json", "Layers": names}]))
    return ImageArchive.open(str(root))


BASE: list[Member] = [("bin/sh", b"busybox", {})]


def test_identical_images(tmp_path: Path) -> None:
    layers: list[list[Member]] = [BASE, [("app", b"1", {})]]
    a = _archive(tmp_path / "a", layers, {"created": "x"})
    b = _archive(tmp_path / "b", layers, {"created": "x"})
    result = compare_archives(a, b, scratch_dir=str(tmp_path / "s"))
    assert result.identical
    assert result.lines() == [f"identical: both builds are image {result.first_id}"]


def test_differences_are_named_per_layer_and_config_field(tmp_path: Path) -> None:
    a = _archive(tmp_path / "a", [BASE, [
        ("built-at", b"Tue Dec  1 21:00:00 UTC 2026\n", {}),
        ("etc/conf", b"same", {"mtime": 1000}),
        ("run.sh", b"echo", {"mode": 0o644}),
        ("gone", b"", {}),
        ("owned", b"o", {"uid": 0}),
    ]], {"created": "2026-12-01T21:00:00Z", "config": {"Env": ["A=1"]}})
    b = _archive(tmp_path / "b", [BASE, [
        ("built-at", b"Tue Dec  1 21:00:03 UTC 2026\n", {}),
        ("etc/conf", b"same", {"mtime": 1003}),
        ("run.sh", b"echo", {"mode": 0o755}),
        ("new", b"", {}),
        ("owned", b"o", {"uid": 1000}),
    ]], {"created": "2026-12-01T21:00:03Z", "config": {"Env": ["A=1"]}})
    result = compare_archives(a, b, scratch_dir=str(tmp_path / "s"))
    assert not result.identical
    assert [c.field for c in result.config] == ["created"]
    assert len(result.layers) == 1
    layer = result.layers[0]
    assert layer.index == 1 and layer.created_by == "step 1"
    found = {f.path: f.what for f in layer.files}
    assert found == {"built-at": ("content",), "etc/conf": ("time",), "run.sh": ("mode",),
                     "gone": ("only in first",), "new": ("only in second",),
                     "owned": ("owner",)}
    text = "\n".join(result.lines())
    assert "layer 1 (step 1): /built-at: content" in text
    assert "config created: " in text


def test_only_the_first_files_are_named(tmp_path: Path) -> None:
    many_a: list[Member] = [(f"f{i:02d}", b"a", {}) for i in range(15)]
    many_b: list[Member] = [(f"f{i:02d}", b"b", {}) for i in range(15)]
    a = _archive(tmp_path / "a", [many_a], {})
    b = _archive(tmp_path / "b", [many_b], {})
    layer = compare_archives(a, b, scratch_dir=str(tmp_path / "s"), limit=4).layers[0]
    assert [f.path for f in layer.files] == ["f00", "f01", "f02", "f03"]
    assert layer.more_files == 11


def test_same_files_in_another_order(tmp_path: Path) -> None:
    a = _archive(tmp_path / "a", [[("x", b"1", {}), ("y", b"2", {})]], {})
    b = _archive(tmp_path / "b", [[("y", b"2", {}), ("x", b"1", {})]], {})
    layer = compare_archives(a, b, scratch_dir=str(tmp_path / "s")).layers[0]
    assert layer.files == () and layer.tar_only == "order"
