"""``squash`` through the real pipeline, on the real engine."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

from atomic_reactor._image.hashing import checksum_file
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry
from tests.support.images import sh

KEY = "squash"

DOCKERFILE = """
    FROM {base}
    LABEL squash.test=yes
    RUN mkdir -p /data/keep /data/opq /data/gone \\
     && echo one > /data/keep/one && ln /data/keep/one /data/keep/one-link \\
     && echo replaced-later > /data/keep/changed && ln /data/keep/changed /data/keep/old-link \\
     && echo del > /data/del && echo gone > /data/gone/x && echo old > /data/opq/old \\
     && echo s > /data/suid && chown 1000:1000 /data/suid && chmod 4755 /data/suid
    RUN rm /data/del /etc/group && rm -rf /data/gone /data/opq \\
     && mkdir /data/opq && echo new > /data/opq/new \\
     && rm /data/keep/changed && echo fresh > /data/keep/changed
    ENV SQUASH_ENV=kept
    USER 1000
    WORKDIR /data
    ENTRYPOINT ["/bin/sh", "-c"]
    CMD ["echo hi"]
    """

CHECK = (
    "for p in /data/del /etc/group /data/gone /data/opq/old; do "
    "  [ -e $p ] && echo \"present $p\"; done; "
    "echo opq: $(ls /data/opq); "
    "echo one: $(cat /data/keep/one) $(cat /data/keep/one-link); "
    "echo inodes: $(stat -c %i /data/keep/one) $(stat -c %i /data/keep/one-link) "
    "$(stat -c %h /data/keep/one); "
    "echo changed: $(cat /data/keep/changed) old-link: $(cat /data/keep/old-link); "
    "echo suid: $(stat -c '%a %u %g' /data/suid); "
    "echo passwd: $(head -c 4 /etc/passwd)"
)


def build(tmp_path: Path, base_image: BaseImage, dockerfile: str, args: dict[str, Any],
          files: dict[str, str] | None = None, **kwargs: Any) -> tuple[str, Any]:
    context = write_context(tmp_path / "src", dockerfile.format(base=base_image.repo), files)
    image = unique("art-test-squash")
    results = build_image_here(source=path_source(context), image=image,
                               parent_registry=base_image.registry.address,
                               prepublish_plugins=[{"name": KEY, "args": args}], **kwargs)
    return image, results


def base_layers(tasker: DockerTasker, base_image: BaseImage) -> list[str]:
    return list(tasker.image_info(base_image.local).layers)


def layers(tasker: DockerTasker, image: str) -> list[str]:
    return list(tasker.image_info(image).layers)


def test_squash_keeps_base_and_merges_the_rest(tmp_path: Path, tasker: DockerTasker,
                                               base_image: BaseImage) -> None:
    export_dir = tmp_path / "export"
    image, results = build(tmp_path, base_image, DOCKERFILE, {"export_dir": str(export_dir)})
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    assert outcome["skipped"] is False
    assert outcome["squashed_layers"] == 2
    assert outcome["kept_layers"] == len(base_layers(tasker, base_image))

    info = tasker.image_info(f"{image}:latest")
    assert info.id == outcome["image_id"] == results.image_id
    assert info.id != outcome["original_image_id"]
    assert list(info.layers) == [*base_layers(tasker, base_image), outcome["layer_diff_id"]]
    assert results.built_img_inspect is not None
    assert results.built_img_inspect["Id"] == info.id
    assert "SQUASH_ENV=kept" in info.env
    assert info.user == "1000"
    assert info.workdir == "/data"
    assert info.entrypoint == ("/bin/sh", "-c")
    assert info.cmd == ("echo hi",)
    assert info.labels["squash.test"] == "yes"
    # the original is still there until remove_built_image runs
    original = layers(tasker, outcome["original_image_id"])
    assert len(original) == len(base_layers(tasker, base_image)) + 2

    output = sh(tasker, f"{image}:latest", CHECK).splitlines()
    assert not [line for line in output if line.startswith("present")], output
    assert "opq: new" in output
    assert "one: one one" in output
    inodes = next(line for line in output if line.startswith("inodes:")).split()
    assert inodes[1] == inodes[2] and inodes[3] == "2"  # still one inode, two names
    assert "changed: fresh old-link: replaced-later" in output
    assert "suid: 4755 1000 1000" in output
    assert "passwd: root" in output  # the base's other files are intact

    # the exported archive: recorded, checksummed, and the same image
    exported = outcome["exported"]
    archive = export_dir / "image.tar"
    assert exported["path"] == str(archive)
    sums = checksum_file(str(archive))
    assert (exported["size"], exported["sha256sum"], exported["md5sum"]) == (
        sums.size, sums.sha256, sums.md5)
    assert results.exported_images[0].sha256sum == sums.sha256
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [f"{image}:latest"]
        assert manifest[0]["Config"] == info.id.removeprefix("sha256:") + ".json"
        layer = tar.extractfile(manifest[0]["Layers"][-1])
        assert layer is not None
        digest = hashlib.sha256(layer.read()).hexdigest()
    assert f"sha256:{digest}" == outcome["layer_diff_id"]


def test_dont_load_only_exports(tmp_path: Path, tasker: DockerTasker,
                                base_image: BaseImage) -> None:
    image, results = build(tmp_path, base_image, DOCKERFILE,
                           {"dont_load": True, "export_dir": str(tmp_path / "export")})
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    assert outcome["loaded"] is False
    assert results.image_id == outcome["original_image_id"]
    assert len(layers(tasker, f"{image}:latest")) == len(base_layers(tasker, base_image)) + 2
    assert tasker.find_image(outcome["squashed_image_id"]) is None
    # the archive loads as the squashed image
    tasker.load_image((tmp_path / "export" / "image.tar").read_bytes())
    loaded = layers(tasker, outcome["squashed_image_id"])
    assert len(loaded) == len(base_layers(tasker, base_image)) + 1
    output = sh(tasker, outcome["squashed_image_id"], CHECK).splitlines()
    assert not [line for line in output if line.startswith("present")], output
    assert "suid: 4755 1000 1000" in output


def test_from_layer_number(tmp_path: Path, tasker: DockerTasker,
                           base_image: BaseImage) -> None:
    dockerfile = """
        FROM {base}
        RUN echo first > /first
        RUN echo second > /second && rm /first
        RUN echo third > /third
        """
    alias = f"{unique('art-test-squash-alias')}:squashed"
    image, results = build(tmp_path, base_image, dockerfile,
                           {"from_layer": "2", "save_archive": False, "tag": alias})
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    assert (outcome["squashed_layers"], outcome["exported"]) == (2, None)
    assert outcome["tags"] == [f"{image}:latest", alias]
    assert tasker.image_info(alias).id == outcome["image_id"]
    squashed = layers(tasker, f"{image}:latest")
    original = layers(tasker, outcome["original_image_id"])
    assert squashed[:-1] == original[:-2]  # base + the first RUN kept
    assert len(squashed) == len(original) - 1
    output = sh(tasker, f"{image}:latest",
                    "cat /second /third; [ -e /first ] && echo first-present; true")
    assert output.split() == ["second", "third"]
    assert results.exported_images == ()


def test_identical_empty_layers(tmp_path: Path, tasker: DockerTasker,
                                base_image: BaseImage) -> None:
    # the same COPY twice makes two identical layers: docker save stores the second
    # as a symbolic link to the first
    dockerfile = """
        FROM {base}
        COPY same.txt /same.txt
        COPY same.txt /same.txt
        RUN echo x > /x && rm /etc/passwd
        """
    image, results = build(tmp_path, base_image, dockerfile,
                           {"export_dir": str(tmp_path / "export")},
                           files={"same.txt": "same\n"})
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    assert outcome["squashed_layers"] == 3
    assert len(layers(tasker, f"{image}:latest")) == len(base_layers(tasker, base_image)) + 1
    original = layers(tasker, outcome["original_image_id"])
    assert original[-2] == original[-3]  # really identical
    output = sh(tasker, f"{image}:latest",
                    "cat /x /same.txt; [ -e /etc/passwd ] && echo passwd; true")
    assert output.split() == ["x", "same"]


def test_nothing_to_squash_is_a_recorded_skip(tmp_path: Path, tasker: DockerTasker,
                                              base_image: BaseImage) -> None:
    dockerfile = """
        FROM {base}
        RUN echo only > /only
        LABEL a=b
        """
    _, results = build(tmp_path, base_image, dockerfile,
                       {"export_dir": str(tmp_path / "export")})
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    assert outcome["skipped"] is True
    assert "nothing to squash" in outcome["reason"]
    assert results.image_id == outcome["original_image_id"]
    # still exported (later plugins copy or compress it)
    archive = tmp_path / "export" / "image.tar"
    assert outcome["exported"]["sha256sum"] == checksum_file(str(archive)).sha256
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["Config"].startswith(results.image_id.removeprefix("sha256:"))


def test_later_plugins_push_the_squashed_image(tmp_path: Path, tasker: DockerTasker,
                                               base_image: BaseImage,
                                               registry: Registry) -> None:
    image, results = build(tmp_path, base_image, DOCKERFILE, {"save_archive": False},
                           target_registries=[registry.address],
                           target_registries_insecure=True)
    assert not results.is_failed(), results.error
    outcome = results.plugin_results["prepublish"][KEY]
    with RegistryClient(registry.address, insecure=True) as client:
        manifest, _ = client.get_manifest(image, "latest")
        config = json.loads(client.get_blob(image, manifest["config"]["digest"]))
    assert len(manifest["layers"]) == len(base_layers(tasker, base_image)) + 1
    assert config["rootfs"]["diff_ids"][-1] == outcome["layer_diff_id"]
    assert manifest["config"]["digest"] == outcome["image_id"]


def test_bad_from_layer_fails_the_build(tmp_path: Path, base_image: BaseImage) -> None:
    _, results = build(tmp_path, base_image, DOCKERFILE,
                       {"from_layer": "no-such-image:never", "save_archive": False})
    assert results.is_failed()
    assert "from_layer" in results.plugins_errors[KEY]
