"""``cp_built_image_to_nfs`` without an engine: directories, NFS mount checks, refusals."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._image.hashing import checksum_file
from atomic_reactor._results import ExportedImage
from atomic_reactor.errors import AtomicReactorError, InputError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins import cp_built_image_to_nfs as module
from atomic_reactor.plugins.cp_built_image_to_nfs import CopyBuiltImageToNFSPlugin, mounted_source
from tests.support.fake_engine import fake_tasker


@pytest.fixture
def exported(tmp_path: Path) -> ExportedImage:
    path = tmp_path / "export" / "image.tar"
    path.parent.mkdir()
    path.write_bytes(os.urandom(3_000_000))
    os.utime(path, (1_600_000_000, 1_600_000_000))
    sums = checksum_file(str(path))
    return ExportedImage(path=str(path), size=sums.size, sha256sum=sums.sha256, md5sum=sums.md5)


def make_plugin(sequence: list[ExportedImage], **args: Any) -> CopyBuiltImageToNFSPlugin:
    workflow = SimpleNamespace(exported_image_sequence=sequence)
    return CopyBuiltImageToNFSPlugin(fake_tasker(), cast("DockerBuildWorkflow", workflow), **args)


def test_copies_into_a_directory(tmp_path: Path, exported: ExportedImage) -> None:
    target = tmp_path / "share"
    target.mkdir()
    result = make_plugin([exported], nfs_server_path=str(target), dest_dir="builds/1").run()
    copy = target / "builds/1/image.tar"
    assert result.path == str(copy)
    assert copy.read_bytes() == Path(exported.path).read_bytes()
    assert (result.size, result.sha256sum) == (exported.size, exported.sha256sum)
    assert result.nfs_server is None
    assert copy.stat().st_mtime == 1_600_000_000  # metadata copied like cp -p
    assert sorted(p.name for p in copy.parent.iterdir()) == ["image.tar"]  # no partial file


def test_missing_directory_needs_create_dir(tmp_path: Path, exported: ExportedImage) -> None:
    target = tmp_path / "not" / "there"
    with pytest.raises(InputError, match="set create_dir"):
        make_plugin([exported], nfs_server_path=str(target)).run()
    assert not target.exists()
    result = make_plugin([exported], nfs_server_path=str(target), create_dir=True).run()
    assert Path(result.path) == target / "image.tar"


def test_never_overwrites(tmp_path: Path, exported: ExportedImage) -> None:
    (tmp_path / "share").mkdir()
    (tmp_path / "share/image.tar").write_bytes(b"older build")
    with pytest.raises(AtomicReactorError, match="already exists"):
        make_plugin([exported], nfs_server_path=str(tmp_path / "share")).run()
    assert (tmp_path / "share/image.tar").read_bytes() == b"older build"


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, exported: ExportedImage) -> None:
    (tmp_path / "share").mkdir()
    wrong = ExportedImage(path=exported.path, size=exported.size, sha256sum="0" * 64)
    with pytest.raises(AtomicReactorError, match="recorded with"):
        make_plugin([wrong], nfs_server_path=str(tmp_path / "share")).run()
    assert list((tmp_path / "share").iterdir()) == []


def test_needs_an_exported_image(tmp_path: Path, exported: ExportedImage) -> None:
    with pytest.raises(PluginConfigError, match="no exported image"):
        make_plugin([], nfs_server_path=str(tmp_path)).run()
    Path(exported.path).unlink()
    with pytest.raises(AtomicReactorError, match="does not exist"):
        make_plugin([exported], nfs_server_path=str(tmp_path)).run()


def test_copies_the_last_exported_image(tmp_path: Path, exported: ExportedImage) -> None:
    newer = Path(exported.path).with_name("compressed.tar.gz")
    newer.write_bytes(b"compressed")
    sums = checksum_file(str(newer))
    last = ExportedImage(path=str(newer), size=sums.size, sha256sum=sums.sha256,
                         compression="gzip")
    (tmp_path / "share").mkdir()
    result = make_plugin([exported, last], nfs_server_path=str(tmp_path / "share")).run()
    assert Path(result.path).name == "compressed.tar.gz"


def test_dest_dir_through_a_symlink_leading_out(tmp_path: Path, exported: ExportedImage) -> None:
    share, outside = tmp_path / "share", tmp_path / "outside"
    share.mkdir()
    outside.mkdir()
    os.symlink(outside, share / "sub")
    with pytest.raises(InputError, match="leads outside"):
        make_plugin([exported], nfs_server_path=str(share), dest_dir="sub").run()
    assert list(outside.iterdir()) == []


def write_mountinfo(path: Path, mountpoint: Path, source: str, fstype: str = "nfs4") -> Path:
    escaped = str(mountpoint).replace(" ", "\\040")
    path.write_text(
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        f"98 22 0:50 / {escaped} rw,relatime shared:50 - {fstype} {source} rw,vers=4.2\n")
    return path


def test_nfs_share_must_be_mounted(tmp_path: Path, exported: ExportedImage,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    mountpoint = tmp_path / "mnt point"
    mountpoint.mkdir()
    monkeypatch.setattr(module, "MOUNTINFO", str(write_mountinfo(
        tmp_path / "mountinfo", tmp_path / "elsewhere", "nfs.example.com:/exports")))
    plugin = make_plugin([exported], nfs_server_path="nfs.example.com:/exports/",
                         mountpoint=str(mountpoint), dest_dir="images")
    with pytest.raises(InputError, match="not mounted"):
        plugin.run()
    monkeypatch.setattr(module, "MOUNTINFO", str(write_mountinfo(
        tmp_path / "mountinfo", mountpoint, "other.example.com:/exports")))
    with pytest.raises(InputError, match=r"not nfs\.example\.com"):
        plugin.run()
    assert list(mountpoint.iterdir()) == []
    monkeypatch.setattr(module, "MOUNTINFO", str(write_mountinfo(
        tmp_path / "mountinfo", mountpoint, "nfs.example.com:/exports")))
    result = plugin.run()
    assert result.path == str(mountpoint / "images" / "image.tar")
    assert result.nfs_server == "nfs.example.com"
    assert Path(result.path).read_bytes() == Path(exported.path).read_bytes()


def test_mounted_source_reads_the_last_mount(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    write_mountinfo(info, tmp_path / "a b", "srv:/x")
    with open(info, "a") as handle:
        handle.write(f"99 98 0:51 / {tmp_path}/a\\040b rw - nfs srv:/y rw\n")
    assert mounted_source(str(tmp_path / "a b"), str(info)) == ("srv:/y", "nfs")
    assert mounted_source(str(tmp_path / "nothing"), str(info)) is None


@pytest.mark.parametrize(("args", "argument"), [
    ({"nfs_server_path": "relative/path"}, "nfs_server_path"),
    ({"nfs_server_path": "server:"}, "nfs_server_path"),
    ({"nfs_server_path": "/srv", "dest_dir": "../up"}, "dest_dir"),
    ({"nfs_server_path": "/srv", "dest_dir": "/abs"}, "dest_dir"),
    ({"nfs_server_path": "srv:/x", "mountpoint": ""}, "mountpoint"),
])
def test_bad_arguments(args: dict[str, Any], argument: str) -> None:
    with pytest.raises(PluginConfigError) as caught:
        make_plugin([], **args)
    assert caught.value.argument == argument


def test_takes_the_dict_a_1_6_plugin_appended(tmp_path: Path, exported: ExportedImage) -> None:
    from atomic_reactor._results import ExportedImages

    sequence = ExportedImages()
    sequence.append({"path": exported.path, "size": exported.size,  # as 1.6 plugins did
                     "md5sum": exported.md5sum, "sha256sum": exported.sha256sum})
    target = tmp_path / "share"
    target.mkdir()
    result = make_plugin(sequence, nfs_server_path=str(target)).run()
    assert Path(result.path).read_bytes() == Path(exported.path).read_bytes()
    assert result.sha256sum == exported.sha256sum
