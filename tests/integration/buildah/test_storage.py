"""Our own push reading a buildah image straight from buildah's storage (no archive).

A built image is pushed by ``ImagePush`` to three registries from
``BuildahEngine.save_image``, which reads the layers from the storage's tar-split files
and diff directories: every registry has every blob by its digest, each layer blob is
the gzip of a tar whose sha256 is buildah's diff id, and buildah's own archive path is
not used (no ``buildah push``). A layer whose file was altered fails the stream.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from atomic_reactor._engine.buildah import BuildahEngine, storage
from atomic_reactor._image.push import ImagePush, RegistryTarget, engine_archive
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import EngineError
from tests.integration.helpers import unique, write_context
from tests.support.env import BaseImage, Registry

DOCKERFILE = """\
FROM {base}
RUN head -c 3000000 /dev/urandom > /big && mkdir -p /d/e && echo {payload} > /d/e/payload \\
    && ln -s /d/e/payload /link && ln /big /hard && touch /empty
RUN rm /empty && echo second > /second
"""


@pytest.fixture
def built(base_image: BaseImage, tmp_path: Path) -> Iterator[tuple[DockerTasker, str]]:
    tasker = DockerTasker(engine="buildah")
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image.local,
                                                                payload=unique("payload")))
    name = unique("art-storage")
    image_id = tasker.build_image(str(context), f"{name}:src").image_id
    try:
        yield tasker, image_id
    finally:
        subprocess.run(["buildah", "rmi", "-f", image_id], capture_output=True, check=False)


def buildah_diff_ids(image_id: str) -> list[str]:
    done = subprocess.run(["buildah", "inspect", "--type", "image", image_id],
                          capture_output=True, check=True, text=True)
    config = json.loads(json.loads(done.stdout)["Config"])
    return list(config["rootfs"]["diff_ids"])


def test_push_from_storage_to_three_registries(built: tuple[DockerTasker, str],
                                               registry: Registry,
                                               more_registries: list[Registry],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tasker, image_id = built
    engine = tasker.engine
    assert isinstance(engine, BuildahEngine)
    ran: list[tuple[str, ...]] = []
    original = engine.buildah.run

    def watched(what: str, *args: str, **kwargs: object) -> str:
        ran.append(args)
        return original(what, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.buildah, "run", watched)
    repo = unique("art-storage-push")
    addresses = [registry.address, *(r.address for r in more_registries)]
    targets = [RegistryTarget(address, names=(ImageName.parse(f"{address}/{repo}:1"),))
               for address in addresses]
    prepared, results = ImagePush(saved=lambda: engine_archive(tasker, image_id)).run(targets)
    assert not [args for args in ran if args and args[0] == "push"], "no buildah archive"
    diff_ids = buildah_diff_ids(image_id)
    assert list(prepared.diff_ids) == diff_ids
    assert len(diff_ids) >= 3  # the base's layer and the two RUN layers
    assert [r.registry for r in results] == addresses
    for address in addresses:
        with RegistryClient(address) as client:
            manifest, digest = client.get_manifest(repo, "1")
            assert digest == prepared.digest
            config_blob = client.get_blob(repo, manifest["config"]["digest"])
            # the storage's own config: its digest is the image id
            assert "sha256:" + hashlib.sha256(config_blob).hexdigest() == \
                manifest["config"]["digest"] == "sha256:" + image_id.removeprefix("sha256:")
            assert json.loads(config_blob)["rootfs"]["diff_ids"] == diff_ids
            for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
                blob = client.get_blob(repo, layer["digest"])
                assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
                assert len(blob) == layer["size"]
                assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id


def test_an_altered_layer_fails_the_stream(built: tuple[DockerTasker, str],
                                           tmp_path: Path) -> None:
    tasker, image_id = built
    engine = tasker.engine
    assert isinstance(engine, BuildahEngine)
    reader = storage.ImageStorage(engine.storage.root, engine.storage.driver,
                                  engine.storage.options)
    stored = reader.image(image_id)
    top = stored.layers[-1]
    second = Path(reader.diff_dir(top.id)) / "second"
    assert second.read_text() == "second\n"
    second.write_text("SECOND\n")  # same size, other bytes
    with pytest.raises(EngineError, match=f"layer {top.id[:12]}.*not its diff id"):
        for _ in engine.save_image(image_id):
            pass
