"""``compress`` without an engine: every method, programs and Python fallbacks."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from atomic_reactor._image import compression
from atomic_reactor._image.hashing import checksum_file
from atomic_reactor._results import ExportedImage
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AtomicReactorError, PluginConfigError
from atomic_reactor.inner import DockerBuildWorkflow
from atomic_reactor.plugins.compress import CompressPlugin
from tests.support.fake_engine import FakeEngine


def decompress(path: Path, method: str) -> bytes:
    if method == "gzip":
        return gzip.decompress(path.read_bytes())
    if method == "xz":
        return lzma.decompress(path.read_bytes())
    zstd = shutil.which("zstd")
    if zstd is None:
        pytest.skip("no zstd program to check the output with")
    return subprocess.run([zstd, "-d", "-c", str(path)], capture_output=True,
                          check=True).stdout


@pytest.fixture
def payload() -> bytes:
    # compressible and incompressible parts, spanning several blocks
    return (b"layer data " * 400_000) + os.urandom(3_000_000) + b"end"


def exported_file(directory: Path, data: bytes) -> ExportedImage:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "image.tar"
    path.write_bytes(data)
    sums = checksum_file(str(path))
    return ExportedImage(path=str(path), size=sums.size, sha256sum=sums.sha256, md5sum=sums.md5)


def make_plugin(exported: list[ExportedImage], saved: bytes | None = None,
                **args: Any) -> CompressPlugin:
    engine = FakeEngine()
    engine.add_image(id="sha256:built")
    if saved is not None:
        engine.archives["sha256:built"] = saved
    tasker = DockerTasker(engine=engine)
    workflow = SimpleNamespace(exported_image_sequence=exported,
                               builder=SimpleNamespace(image_id="sha256:built"))
    return CompressPlugin(tasker, cast("DockerBuildWorkflow", workflow), **args)


@pytest.mark.parametrize("fallback", [False, True], ids=["program", "python"])
@pytest.mark.parametrize("method", ["gzip", "xz", "zstd"])
def test_compresses_the_exported_image(tmp_path: Path, payload: bytes, method: str,
                                       fallback: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if fallback:
        if method == "zstd":
            pytest.importorskip("zstandard")
        monkeypatch.setattr(compression, "_which", lambda program: None)
    else:
        program = {"gzip": "pigz", "xz": "xz", "zstd": "zstd"}[method]
        if compression._which(program) is None:
            pytest.skip(f"{program} is not installed")
    sequence = [exported_file(tmp_path / "export", payload)]
    result = make_plugin(sequence, method=method, level=1).run()
    out = Path(result.path)
    assert out.parent == tmp_path / "export"
    assert out.name == "compressed.tar." + {"gzip": "gz", "xz": "xz", "zstd": "zst"}[method]
    assert decompress(out, method) == payload
    assert hashlib.sha256(decompress(out, method)).hexdigest() == sequence[0].sha256sum
    sums = checksum_file(str(out))
    assert (result.size, result.sha256sum, result.md5sum) == (sums.size, sums.sha256, sums.md5)
    assert result.uncompressed_size == len(payload)
    assert result.uncompressed_sha256sum == sequence[0].sha256sum
    assert result.size < len(payload)
    assert result.tool.startswith("python") == fallback
    assert len(sequence) == 2
    assert sequence[-1].compression == method and sequence[-1].path == result.path


def test_docker_save_when_nothing_was_exported(tmp_path: Path, payload: bytes) -> None:
    sequence: list[ExportedImage] = []
    result = make_plugin(sequence, saved=payload, method="gzip",
                         export_dir=str(tmp_path / "out")).run()
    assert result.source == "sha256:built"
    assert gzip.decompress(Path(result.path).read_bytes()) == payload
    assert result.uncompressed_sha256sum == hashlib.sha256(payload).hexdigest()
    assert Path(result.path).parent == tmp_path / "out"
    assert sequence[0].compression == "gzip"


def test_load_exported_image_false_saves_anyway(tmp_path: Path, payload: bytes) -> None:
    sequence = [exported_file(tmp_path / "export", b"the exported file")]
    result = make_plugin(sequence, saved=payload, load_exported_image=False,
                         export_dir=str(tmp_path / "out")).run()
    assert gzip.decompress(Path(result.path).read_bytes()) == payload


def test_load_exported_image_true_needs_an_export(tmp_path: Path) -> None:
    with pytest.raises(PluginConfigError, match="no \\(uncompressed\\) image was exported"):
        make_plugin([], load_exported_image=True).run()


def test_lzma_is_xz_and_compressed_exports_are_skipped(tmp_path: Path, payload: bytes,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "_which", lambda program: None)
    sequence = [exported_file(tmp_path / "export", payload)]
    first = make_plugin(sequence, method="gzip").run()
    second = make_plugin(sequence, method="lzma", level=0).run()  # compresses image.tar again
    assert second.method == "xz"
    assert lzma.decompress(Path(second.path).read_bytes()) == payload
    assert Path(first.path).exists()


def test_changed_export_is_detected(tmp_path: Path, payload: bytes) -> None:
    sequence = [exported_file(tmp_path / "export", payload)]
    Path(sequence[0].path).write_bytes(payload[:-1] + b"X")
    with pytest.raises(AtomicReactorError, match="changed since it was exported"):
        make_plugin(sequence).run()
    assert not (tmp_path / "export/compressed.tar.gz").exists()


def test_never_overwrites(tmp_path: Path, payload: bytes) -> None:
    sequence = [exported_file(tmp_path / "export", payload)]
    (tmp_path / "export/compressed.tar.gz").write_bytes(b"someone else's")
    with pytest.raises(AtomicReactorError, match="already exists"):
        make_plugin(sequence).run()
    assert (tmp_path / "export/compressed.tar.gz").read_bytes() == b"someone else's"


def test_zstd_without_any_implementation(tmp_path: Path, payload: bytes,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compression, "_which", lambda program: None)
    monkeypatch.setitem(__import__("sys").modules, "zstandard", None)
    sequence = [exported_file(tmp_path / "export", payload)]
    with pytest.raises(AtomicReactorError, match="zstd program or the zstandard"):
        make_plugin(sequence, method="zstd").run()
    assert not (tmp_path / "export/compressed.tar.zst").exists()
    assert len(sequence) == 1


def test_failing_program_is_reported(tmp_path: Path, payload: bytes,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "pigz"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'pigz: out of cheese' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(compression, "_which", lambda program: str(fake))
    sequence = [exported_file(tmp_path / "export", payload)]
    with pytest.raises(AtomicReactorError, match=r"exit 3.*out of cheese"):
        make_plugin(sequence).run()
    assert not (tmp_path / "export/compressed.tar.gz").exists()


@pytest.mark.parametrize(("args", "argument"), [
    ({"method": "gzip", "level": 0}, "level"),
    ({"method": "gzip", "level": 10}, "level"),
    ({"method": "xz", "level": 10}, "level"),
    ({"method": "zstd", "level": 20}, "level"),
    ({"method": "bzip2"}, "method"),
    ({"export_dir": " "}, "export_dir"),
])
def test_bad_arguments(args: dict[str, Any], argument: str) -> None:
    with pytest.raises(PluginConfigError) as caught:
        make_plugin([], **args)
    assert caught.value.argument == argument


def test_schema_rejects_unknown_method() -> None:
    from atomic_reactor._plugin_args import validate_plugin_args

    validate_plugin_args("compress", CompressPlugin, {"method": "zstd", "level": 3})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("compress", CompressPlugin, {"method": "rar"})
