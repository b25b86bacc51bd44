"""dockerd's overlay2 storage read straight from its files (``_engine/docker/storage.py``),
against the real dockerd: the same image as ``docker save`` gives, byte for byte per
layer; ``docker save`` where the files cannot be read; an image removed under the read."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from atomic_reactor._engine.docker import storage
from atomic_reactor._engine.docker.engine import DockerEngine
from atomic_reactor._engine.storage import StorageUnsupported
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import EngineError
from tests.integration.helpers import unique, write_context
from tests.support.env import BaseImage
from tests.support.tracker import Tracker


def _members(stream: bytes) -> tuple[list[str], dict[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
        names = tar.getnames()
        files = {member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
                 for member in tar.getmembers() if member.isfile()}
    return names, files


def _layers(files: dict[str, bytes]) -> tuple[bytes, list[bytes]]:
    """The config and the layer tars of an archive, as its manifest.json lists them."""
    manifest = json.loads(files["manifest.json"])[0]
    return files[manifest["Config"]], [files[name] for name in manifest["Layers"]]


@pytest.fixture
def odd_image(tasker: DockerTasker, base_image: BaseImage, tmp_path: Path,
              engine_cleanup: Tracker) -> str:
    """An image whose layers have what a tar can: a big file, symbolic and hard links, an
    empty directory, a whiteout (a base file removed), an opaque directory, a file name
    that is not UTF-8, a file with no bytes, odd modes."""
    context = write_context(tmp_path, f"""
        FROM {base_image.local}
        RUN head -c 3000000 /dev/urandom > /big && ln -s /big /link && ln /big /hard \\
            && mkdir -p /empty /opaque/old && touch /opaque/old/x /zero \\
            && chmod 4710 /zero && touch "$(printf '/odd-\\377-name')"
        RUN rm -rf /opaque /bin/true && mkdir /opaque && echo new > /opaque/new \\
            && echo again > /big
        """)
    name = unique("art-docker-storage")
    engine_cleanup.track_image(name)
    list(tasker.build_image_from_path(str(context), name, stream=True))
    return name


def test_the_storage_gives_the_layers_docker_save_gives(tasker: DockerTasker,
                                                       odd_image: str) -> None:
    engine = tasker.engine
    assert isinstance(engine, DockerEngine)
    read_names, read = _members(b"".join(engine.read_image(odd_image)))
    saved_names, saved = _members(b"".join(engine.save_image(odd_image)))
    # the storage's layout (config first, <diff id>.tar), not docker save's <id>/layer.tar
    assert read_names[0].endswith(".json") and not any("/" in n for n in read_names)
    assert any(name.endswith("/layer.tar") for name in saved_names)
    read_config, read_layers = _layers(read)
    saved_config, saved_layers = _layers(saved)
    assert read_config == saved_config
    assert read_layers == saved_layers  # byte for byte, layer by layer
    diff_ids = json.loads(read_config)["rootfs"]["diff_ids"]
    assert ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in read_layers] == diff_ids
    assert len(diff_ids) == 3
    assert json.loads(read["manifest.json"])[0]["RepoTags"] == [f"{odd_image}:latest"]
    image_id = tasker.inspect_image(odd_image)["Id"]
    _, by_id = _members(b"".join(engine.read_image(image_id[7:19])))
    assert json.loads(by_id["manifest.json"])[0]["RepoTags"] == []


def test_chain_ids_are_the_ones_dockerd_keeps(tasker: DockerTasker, odd_image: str) -> None:
    inspect = tasker.inspect_image(odd_image)
    reader = storage.DockerStorage.of_inspect(inspect)
    _, layers = reader.layers(inspect["Id"])
    assert [layer.diff_id for layer in layers] == inspect["RootFS"]["Layers"]
    assert layers[-1].diff_dir == inspect["GraphDriver"]["Data"]["UpperDir"]
    assert [layer.chain_id for layer in layers] == \
        storage.chain_ids(inspect["RootFS"]["Layers"])


def test_docker_save_where_the_storage_cannot_be_read(
        tasker: DockerTasker, odd_image: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A data root this process cannot read (another host's, a container's view without
    it): docker save, the archive as dockerd writes it."""
    monkeypatch.setattr(storage.DockerStorage, "of_inspect",
                        classmethod(lambda cls, inspect: cls(str(tmp_path / "no"), "overlay2")))
    with pytest.raises(StorageUnsupported, match="not a readable overlay2 storage"):
        storage.DockerStorage(str(tmp_path / "no"), "overlay2")
    names, files = _members(b"".join(tasker.engine.read_image(odd_image)))
    assert any(name.endswith("/layer.tar") for name in names)
    config, _ = _layers(files)
    assert "sha256:" + hashlib.sha256(config).hexdigest() == \
        tasker.inspect_image(odd_image)["Id"]


def test_an_image_removed_under_the_read_ends_it_with_an_engine_error(
        tasker: DockerTasker, odd_image: str) -> None:
    stream = tasker.engine.read_image(odd_image)
    first = next(iter(stream))  # the config: the image's files were all there
    assert first
    subprocess.run(["docker", "rmi", "-f", odd_image], check=True, capture_output=True)
    with pytest.raises(EngineError, match=r"docker storage: .*(reading image|layer)"):
        for _chunk in stream:
            pass
