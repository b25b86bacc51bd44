"""The shipped example (examples/build.json on examples/hello): the whole pipeline."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import docker
import pytest

from atomic_reactor._registry.client import RegistryClient
from tests.integration.helpers import REPO_ROOT, run_cli
from tests.support.env import Registry, ensure_base_image, push_base_image

EXAMPLE_BASE = "atomic-reactor/busybox:latest"


@pytest.fixture
def example_source(tmp_path: Path) -> Path:
    source = tmp_path / "hello"
    shutil.copytree(REPO_ROOT / "examples" / "hello", source)
    return source


def test_example_pipeline_end_to_end(example_source: Path, registry: Registry,
                                     engine: docker.APIClient, tmp_path: Path,
                                     base_image: object) -> None:
    ensure_base_image(EXAMPLE_BASE)
    push_base_image(registry, EXAMPLE_BASE)
    out = tmp_path / "out"
    reg = registry.address
    registries = json.dumps({reg: {"insecure": True}})
    done = run_cli([
        "build", "json", str(REPO_ROOT / "examples" / "build.json"),
        "--substitute", f"source.uri=file://{example_source}",
        "--substitute", f"parent_registry={reg}",
        "--substitute", f'target_registries=["{reg}"]',
        "--substitute", f"prebuild_plugins.pull_base_image.parent_registry={reg}",
        "--substitute", f"prepublish_plugins.squash.export_dir={out}/images",
        "--substitute", f"postbuild_plugins.compress.export_dir={out}/images",
        "--substitute", f"postbuild_plugins.tag_and_push.registries={registries}",
        "--substitute", f"exit_plugins.store_metadata.path={out}/metadata.json",
        "--substitute", f"exit_plugins.store_logs_to_file.file_path={out}/plugins.json",
        "--metadata-file", str(out / "results.json"),
    ])
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["error"] is None

    # every tag the plugins asked for is in the registry, all with one digest
    with RegistryClient(reg) as client:
        tags = set(client.list_tags("atomic-reactor/hello"))
        assert {"latest", "1.0", "1.0-1", "example"} <= tags
        digests = {client.get_manifest_digest("atomic-reactor/hello", t) for t in tags}
    assert len(digests) == 1
    assert set(results["digests"][reg].values()) == digests

    # labels, help page and the Dockerfile are in the image; it is squashed
    inspect = engine.inspect_image(results["image_id"])
    labels = inspect["Config"]["Labels"]
    assert labels["name"] == "atomic-reactor/hello" and labels["release"] == "1"
    assert labels["vendor"] == "atomic-reactor example" and "build-date" in labels
    base_layers = engine.inspect_image(EXAMPLE_BASE)["RootFS"]["Layers"]
    assert len(inspect["RootFS"]["Layers"]) == len(base_layers) + 1
    container = engine.create_container(results["image_id"], command=[
        "sh", "-c", "cat /greeting; ls /help.1 /root/buildinfo/"])
    try:
        engine.start(container)
        assert engine.wait(container)["StatusCode"] == 0
        output = engine.logs(container).decode()
    finally:
        engine.remove_container(container, force=True)
    assert "Hello from an image built by atomic-reactor." in output
    assert "/help.1" in output and "Dockerfile-atomic-reactor-hello-1.0-1" in output

    # the exported and compressed images are what the results say
    exported = {Path(e["path"]).name: e for e in results["exported_images"]}
    raw = (out / "images" / "image.tar").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == exported["image.tar"]["sha256sum"]
    packed = out / "images" / "compressed.tar.gz"
    assert hashlib.sha256(gzip.decompress(packed.read_bytes())).hexdigest() == \
        exported["image.tar"]["sha256sum"]

    # exit plugins wrote their documents
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["status"] == "succeeded"
    assert json.loads((out / "plugins.json").read_text())
