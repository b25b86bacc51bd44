"""``squash`` without an engine: merging layers, writing the layer, config, arguments.

Layers are made as real tar files; a small simulator applies layers the way the
engine does (whiteouts, opaque directories, hard links, a non-directory replacing
a directory) and the file system from the original layers is compared with the
one from the squashed layer, on top of the same base.
"""

from __future__ import annotations

import io
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._engine.base import ImageInfo
from atomic_reactor._image.merge import (
    layer_size,
    merge_layers,
    read_members,
    squashed_config,
    write_layer,
)
from atomic_reactor._image.tarstream import ArchiveError
from atomic_reactor._reference import ImageName
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.squash import SquashPlugin
from tests.support.fake_engine import FakeEngine, image_id_for

# -- making layers ------------------------------------------------------------------------------

Spec = tuple[Any, ...]


def make_layer(path: Path, specs: Sequence[Spec]) -> Path:
    """A layer tar from specs:

    ("dir", name[, mode, uid, gid, mtime]), ("file", name, data[, mode, uid, gid, mtime]),
    ("sym", name, target), ("link", name, target), ("wh", name), ("opq", dirname),
    ("xattr", name, data, {key: value}).
    """
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for spec in specs:
            kind, name = spec[0], spec[1]
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            data = None
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                for attr, value in zip(("mode", "uid", "gid", "mtime"), spec[2:], strict=False):
                    setattr(info, attr, value)
            elif kind in ("file", "xattr"):
                data = spec[2]
                info.size = len(data)
                info.mode = 0o644
                if kind == "xattr":
                    info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in spec[3].items()}
                else:
                    for attr, value in zip(("mode", "uid", "gid", "mtime"), spec[3:],
                                           strict=False):
                        setattr(info, attr, value)
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = spec[2]
                info.mode = 0o777
            elif kind == "link":
                info.type = tarfile.LNKTYPE
                info.linkname = spec[2]
                info.mode = 0o644
            elif kind == "wh":
                parent, _, base = name.rpartition("/")
                info.name = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
            elif kind == "opq":
                info.name = f"{name}/.wh..wh..opq"
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


# -- applying layers like the engine does --------------------------------------------------------


@dataclass(eq=False)
class Inode:
    kind: str
    data: bytes = b""
    target: str = ""
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime: float = 0
    xattrs: tuple[tuple[str, str], ...] = ()


def apply_layer(fs: dict[str, Inode], layer: Path) -> None:
    """Apply ``layer`` to ``fs`` (path -> inode) as the engine's layer unpacking does."""
    unpacked: set[str] = set()

    def remove_tree(path: str) -> None:
        for key in [k for k in fs if k == path or k.startswith(path + "/")]:
            del fs[key]

    with tarfile.open(layer) as tar:
        for member in tar.getmembers():
            name = member.name.strip("/").removeprefix("./")
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                for key in [k for k in fs if k.startswith(parent + "/") and k not in unpacked]:
                    del fs[key]
                continue
            if base.startswith(".wh."):
                remove_tree(f"{parent}/{base[4:]}" if parent else base[4:])
                continue
            # parents are created when missing
            built = ""
            for part in parent.split("/") if parent else []:
                built = f"{built}/{part}" if built else part
                if built not in fs:
                    fs[built] = Inode("dir", mode=0o755)
                assert fs[built].kind == "dir", f"{name}: {built} is not a directory"
            existing = fs.get(name)
            if existing is not None and not (existing.kind == "dir" and member.isdir()):
                remove_tree(name)
            xattrs = tuple(sorted((k, v) for k, v in member.pax_headers.items()
                                  if k.startswith("SCHILY.xattr.")))
            meta = {"mode": member.mode, "uid": member.uid, "gid": member.gid,
                    "mtime": member.mtime, "xattrs": xattrs}
            if member.isdir():
                if existing is not None and existing.kind == "dir":
                    for attr, value in meta.items():
                        setattr(existing, attr, value)
                else:
                    fs[name] = Inode("dir", **meta)  # type: ignore[arg-type]
            elif member.islnk():
                target = member.linkname.strip("/")
                assert target in fs, f"hard link {name} -> {target}: no such file"
                fs[name] = fs[target]
            elif member.issym():
                fs[name] = Inode("sym", target=member.linkname, **meta)  # type: ignore[arg-type]
            else:
                handle = tar.extractfile(member)
                assert handle is not None
                fs[name] = Inode("file", data=handle.read(), **meta)  # type: ignore[arg-type]
            unpacked.add(name)


def snapshot(fs: dict[str, Inode]) -> dict[str, Any]:
    """A comparable view of ``fs``: contents, metadata and which paths share an inode."""
    groups: dict[int, list[str]] = {}
    for path, inode in fs.items():
        groups.setdefault(id(inode), []).append(path)
    view: dict[str, Any] = {}
    for path, inode in fs.items():
        siblings = tuple(sorted(groups[id(inode)]))
        view[path] = (inode.kind, inode.data, inode.target, inode.mode, inode.uid, inode.gid,
                      inode.mtime, inode.xattrs, siblings if inode.kind == "file" else ())
    return view


def squash_files(tmp_path: Path, layers: list[Path]) -> Path:
    planned = merge_layers([read_members(str(layer)) for layer in layers])
    out = io.BytesIO()
    write_layer(planned, [str(layer) for layer in layers], out.write)
    assert len(out.getvalue()) == layer_size(planned)
    squashed = tmp_path / "squashed.tar"
    squashed.write_bytes(out.getvalue())
    return squashed


def check_equivalent(tmp_path: Path, base: list[Spec], layers: list[list[Spec]]) -> Path:
    base_tar = make_layer(tmp_path / "base.tar", base)
    tars = [make_layer(tmp_path / f"layer{i}.tar", specs) for i, specs in enumerate(layers)]
    expected: dict[str, Inode] = {}
    apply_layer(expected, base_tar)
    for layer in tars:
        apply_layer(expected, layer)
    squashed = squash_files(tmp_path, tars)
    actual: dict[str, Inode] = {}
    apply_layer(actual, base_tar)
    apply_layer(actual, squashed)
    assert snapshot(actual) == snapshot(expected)
    return squashed


def names(layer: Path) -> list[str]:
    with tarfile.open(layer) as tar:
        return [m.name for m in tar.getmembers()]


BASE: list[Spec] = [
    ("dir", "etc"), ("file", "etc/group", b"root:x:0:\n"), ("file", "etc/passwd", b"root\n"),
    ("dir", "bin"), ("file", "bin/busybox", b"\x7fELF", 0o755), ("sym", "bin/sh", "busybox"),
    ("dir", "opt"), ("dir", "opt/dir"), ("file", "opt/dir/a", b"a"), ("file", "opt/dir/b", b"b"),
    ("dir", "var"), ("dir", "var/lib"), ("file", "var/lib/db", b"db"),
]


# -- merging ---------------------------------------------------------------------------------------


def test_deleted_files_stay_deleted(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("dir", "data"), ("file", "data/tmp", b"temporary"), ("file", "data/keep", b"keep")],
        [("dir", "data"), ("wh", "data/tmp"), ("dir", "etc"), ("wh", "etc/group")],
    ])
    listed = names(squashed)
    assert "data/tmp" not in listed
    assert "data/keep" in listed
    assert "etc/.wh.group" in listed  # the base's file must go


def test_whole_tree_deleted_from_base(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("file", "x", b"x")],
        [("wh", "opt"), ("dir", "var"), ("dir", "var/lib"), ("file", "var/lib/new", b"n")],
    ])
    assert ".wh.opt" in names(squashed)


def test_opaque_directory_replaced(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("dir", "opt"), ("dir", "opt/dir"), ("file", "opt/dir/c", b"c")],
        [("dir", "opt"), ("dir", "opt/dir"), ("opq", "opt/dir"), ("file", "opt/dir/new", b"n")],
    ])
    listed = names(squashed)
    assert "opt/dir/.wh..wh..opq" in listed
    assert "opt/dir/c" not in listed


def test_directory_deleted_then_created_again_becomes_opaque(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("file", "y", b"y"), ("wh", "opt")],
        [("dir", "opt", 0o700), ("file", "opt/fresh", b"f")],
    ])
    listed = names(squashed)
    assert ".wh.opt" not in listed
    assert "opt/.wh..wh..opq" in listed


def test_file_and_directory_replace_each_other(tmp_path: Path) -> None:
    check_equivalent(tmp_path, BASE, [
        [("dir", "d"), ("file", "d/inner", b"i"), ("file", "f", b"file")],
        [("file", "d", b"now a file"), ("dir", "f"), ("file", "f/child", b"c")],
        [("dir", "opt"), ("file", "opt/dir", b"base dir replaced by a file")],
    ])


def test_hard_links(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("dir", "h"), ("file", "h/one", b"one"), ("link", "h/one-link", "h/one"),
         ("file", "h/two", b"two"), ("link", "h/two-link", "h/two"),
         ("file", "h/three", b"three"), ("link", "h/three-a", "h/three"),
         ("link", "h/three-b", "h/three")],
        # the target of the first link goes, the second's is replaced
        [("dir", "h"), ("wh", "h/one"), ("file", "h/two", b"TWO, new content")],
        # a link made later to a file of an earlier layer
        [("dir", "h"), ("dir", "z"), ("link", "z/late", "h/three")],
    ])
    with tarfile.open(squashed) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["h/one-link"].isreg()  # carries the data now
    assert members["h/two-link"].isreg()
    assert members["h/two"].isreg()
    assert members["h/three"].isreg()
    assert members["h/three-a"].islnk() and members["h/three-a"].linkname == "h/three"
    assert members["z/late"].islnk() and members["z/late"].linkname == "h/three"


def test_hard_link_to_a_symlink(tmp_path: Path) -> None:
    check_equivalent(tmp_path, BASE, [
        [("sym", "s", "etc/passwd"), ("link", "s2", "s")],
        [("wh", "s")],
    ])


def test_metadata_survives(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("dir", "data", 0o750, 1000, 1000, 1_650_000_000),
         ("file", "data/suid", b"#!/bin/sh\n", 0o4755, 1000, 1000, 1_650_000_123),
         ("xattr", "data/cap", b"bin", {"security.capability": "\x01\x00"})],
        [("file", "other", b"o")],
    ])
    with tarfile.open(squashed) as tar:
        suid = tar.getmember("data/suid")
        cap = tar.getmember("data/cap")
        data = tar.getmember("data")
    assert (suid.mode, suid.uid, suid.gid, suid.mtime) == (0o4755, 1000, 1000, 1_650_000_123)
    assert (data.mode, data.uid, data.gid) == (0o750, 1000, 1000)
    assert cap.pax_headers["SCHILY.xattr.security.capability"] == "\x01\x00"


def test_long_and_unicode_names(tmp_path: Path) -> None:
    deep = "/".join(["directory-with-a-long-name"] * 6)
    parents = [("dir", "/".join(deep.split("/")[:i])) for i in range(1, 7)]
    squashed = check_equivalent(tmp_path, BASE, [
        [*parents, ("file", f"{deep}/file-{'x' * 120}", b"long"), ("file", "caf\u00e9", b"u")],
        [("file", "other", b"o"), ("link", "short-link", f"{deep}/file-{'x' * 120}")],
    ])
    assert f"{deep}/file-{'x' * 120}" in names(squashed)


def test_parents_come_before_children(tmp_path: Path) -> None:
    squashed = check_equivalent(tmp_path, BASE, [
        [("dir", "b"), ("file", "b/1", b"1"), ("dir", "a"), ("file", "a/z", b"z")],
        [("dir", "a"), ("dir", "a/sub"), ("file", "a/sub/f", b"f"), ("file", "a-b", b"x")],
    ])
    listed = [name.rstrip("/") for name in names(squashed)]
    for index, name in enumerate(listed):
        parent = name.rpartition("/")[0]
        if parent:
            assert parent in listed[:index], f"{name} before its parent"


def test_unsafe_names_in_a_layer_are_refused(tmp_path: Path) -> None:
    layer = tmp_path / "bad.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match="leaves the archive"):
        merge_layers([read_members(str(layer))])


@pytest.mark.parametrize("seed", range(25))
def test_random_layers(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    pool = ["a", "b", "c", "a/x", "a/y", "b/x", "b/z", "c/q", "a/x/deep", "b/z/deep"]
    state: dict[str, str] = {"opt": "dir", "opt/dir": "dir", "opt/dir/a": "file",
                             "opt/dir/b": "file", "etc": "dir", "etc/group": "file"}
    layers: list[list[Spec]] = []
    for _ in range(rng.randint(2, 5)):
        specs: list[Spec] = []
        touched: set[str] = set()
        files_here: list[str] = []

        def ensure_parents(path: str, specs: list[Spec] = specs,
                           touched: set[str] = touched) -> bool:
            parent = ""
            for part in path.split("/")[:-1]:
                parent = f"{parent}/{part}" if parent else part
                if state.get(parent, "dir") != "dir":
                    return False
                if parent not in touched:
                    specs.append(("dir", parent, rng.choice([0o755, 0o700])))
                    touched.add(parent)
                    state[parent] = "dir"
            return True

        for _ in range(rng.randint(1, 6)):
            path = rng.choice([*pool, "opt", "opt/dir", "etc/group"])
            if path in touched or any(t.startswith(path + "/") for t in touched):
                continue
            op = rng.choice(["file", "file", "dir", "wh", "link", "opq"])
            if not ensure_parents(path):
                continue
            if op == "file":
                specs.append(("file", path, rng.randbytes(rng.randint(0, 700)),
                              rng.choice([0o644, 0o4755, 0o600]), rng.choice([0, 1000])))
                files_here.append(path)
                for key in [k for k in state if k.startswith(path + "/")]:
                    del state[key]
                state[path] = "file"
            elif op == "dir":
                specs.append(("dir", path, rng.choice([0o755, 0o711])))
                if state.get(path) not in (None, "dir"):
                    state[path] = "dir"
                state[path] = "dir"
            elif op == "opq":
                specs.append(("dir", path))
                specs.append(("opq", path))
                for key in [k for k in state if k.startswith(path + "/")]:
                    del state[key]
                state[path] = "dir"
            elif op == "wh" and path in state:
                specs.append(("wh", path))
                for key in [k for k in state if k == path or k.startswith(path + "/")]:
                    del state[key]
            elif op == "link" and files_here:
                target = rng.choice(files_here)
                if target != path and not target.startswith(path + "/"):
                    specs.append(("link", path, target))
                    for key in [k for k in state if k.startswith(path + "/")]:
                        del state[key]
                    state[path] = "file"
                    files_here.append(path)
            touched.add(path)
        layers.append(specs)
    check_equivalent(tmp_path, BASE, layers)


# -- config ----------------------------------------------------------------------------------------


def test_squashed_config_keeps_config_and_rewrites_history() -> None:
    config: dict[str, Any] = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["A=1"], "Cmd": ["sh"], "Entrypoint": ["/e"], "User": "1000",
                   "WorkingDir": "/w", "Labels": {"l": "v"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:base", "sha256:l1", "sha256:l2"]},
        "history": [
            {"created_by": "base"},
            {"created_by": "LABEL", "empty_layer": True},
            {"created_by": "RUN 1"},
            {"created_by": "ENV", "empty_layer": True},
            {"created_by": "RUN 2"},
            {"created_by": "CMD", "empty_layer": True},
        ],
    }
    new = squashed_config(config, 1, "sha256:new")
    assert new["config"] == config["config"]
    assert new["created"] == config["created"]
    assert new["rootfs"]["diff_ids"] == ["sha256:base", "sha256:new"]
    layered = [h for h in new["history"] if not h.get("empty_layer")]
    assert len(layered) == 2
    assert layered[0]["created_by"] == "base"
    assert layered[1]["created_by"] == "atomic-reactor squash"
    assert [h["created_by"] for h in new["history"] if h.get("empty_layer")] == \
        ["LABEL", "ENV", "CMD"]
    assert config["rootfs"]["diff_ids"][-1] == "sha256:l2"  # the input is not changed


# -- the plugin's arguments and layer choice ----------------------------------------------------


def fake_plugin(tmp_path: Path, layers_of: dict[str, list[str]] | None = None,
                base_layers: list[str] | None = None, **args: Any) -> SquashPlugin:
    engine = FakeEngine()
    for ref, layers in (layers_of or {}).items():
        engine.add_image(ref, id=image_id_for(ref), layers=layers)
    builder = SimpleNamespace(
        image_id="sha256:built", base_image=ImageName.parse("base:1"),
        base_info=lambda: None if base_layers is None else
        ImageInfo(id="sha256:base", layers=tuple(base_layers)))
    workflow = SimpleNamespace(image=ImageName.parse("out:1"), workdir=str(tmp_path),
                               exported_image_sequence=[], builder=builder)
    tasker = DockerTasker(engine=engine)
    return SquashPlugin(tasker, cast("DockerBuildWorkflow", workflow), **args)


LAYERS = ["sha256:aa", "sha256:bb", "sha256:cc", "sha256:dd"]


def test_keeps_the_base_layers(tmp_path: Path) -> None:
    assert fake_plugin(tmp_path, base_layers=LAYERS[:2]).layers_to_keep(LAYERS) == 2
    assert fake_plugin(tmp_path, base_layers=None).layers_to_keep(LAYERS) == 0  # scratch
    assert fake_plugin(tmp_path, from_base=False).layers_to_keep(LAYERS) == 0


def test_base_that_is_not_a_prefix_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not start with the layers"):
        fake_plugin(tmp_path, base_layers=["sha256:zz"]).layers_to_keep(LAYERS)


def test_from_layer_forms(tmp_path: Path) -> None:
    assert fake_plugin(tmp_path, from_layer="3").layers_to_keep(LAYERS) == 1
    assert fake_plugin(tmp_path, from_layer="sha256:bb").layers_to_keep(LAYERS) == 2
    assert fake_plugin(tmp_path, from_layer="bb").layers_to_keep(LAYERS) == 2
    assert fake_plugin(tmp_path, layers_of={"parent:1": LAYERS[:3]},
                       from_layer="parent:1").layers_to_keep(LAYERS) == 3
    with pytest.raises(PluginConfigError, match="neither a layer"):
        fake_plugin(tmp_path, from_layer="nothing:1").layers_to_keep(LAYERS)
    with pytest.raises(PluginConfigError, match="only 4 layers"):
        fake_plugin(tmp_path, from_layer="9").layers_to_keep(LAYERS)


@pytest.mark.parametrize(("args", "argument"), [
    ({"from_layer": "0"}, "from_layer"),
    ({"from_layer": "  "}, "from_layer"),
    ({"tag": "Not A Name"}, "tag"),
    ({"dont_load": True, "save_archive": False}, "save_archive"),
    ({"export_dir": ""}, "export_dir"),
])
def test_bad_arguments(tmp_path: Path, args: dict[str, Any], argument: str) -> None:
    with pytest.raises(PluginConfigError) as caught:
        fake_plugin(tmp_path, **args)
    assert caught.value.argument == argument
    assert caught.value.plugin == "squash"


def test_arguments_schema() -> None:
    from atomic_reactor._plugin_args import validate_plugin_args

    validate_plugin_args("squash", SquashPlugin, {"tag": "a:1", "from_layer": "2",
                                                  "dont_load": True, "save_archive": True})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("squash", SquashPlugin, {"dont_load": "yes"})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("squash", SquashPlugin, {"unknown": 1})
