"""``--metadata-file`` (typed results as JSON) and ``--iidfile``, after success and failure."""

from __future__ import annotations

import json
from pathlib import Path

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._results import BuildResults
from atomic_reactor.api import build_image_here
from tests.integration.helpers import path_source, run_cli, run_failed, unique, write_context
from tests.support.env import BaseImage, Registry, split_reference


def _base_digest(base_image: BaseImage) -> str:
    repository, tag = split_reference(base_image.repo)
    with RegistryClient(base_image.registry.address) as client:
        digest = client.get_manifest_digest(repository, tag)
    assert digest
    return str(digest)


def test_metadata_file_and_iidfile_after_a_successful_build(
        tmp_path: Path, registry: Registry, base_image: BaseImage) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo "{unique('meta')}" > /id
        """)
    name = unique("meta")
    metadata, iidfile = tmp_path / "out" / "meta.json", tmp_path / "iid"
    metadata.parent.mkdir()
    done = run_cli(["build", "path", "--uri", str(context), "--image", f"{name}:1",
                    "--source-registry", registry.address,
                    "--target-registries", registry.address,
                    "--metadata-file", str(metadata), "--iidfile", str(iidfile)])
    assert done.returncode == 0, done.stderr
    data = json.loads(metadata.read_text())
    assert data["failed"] is False and data["error"] is None
    assert data["image_id"].startswith("sha256:")
    assert iidfile.read_text() == data["image_id"]
    reference = f"{registry.address}/{name}:1"
    with RegistryClient(registry.address) as client:
        assert data["digests"] == {registry.address: {
            reference: client.get_manifest_digest(name, "1")}}
    assert data["tags"] == [f"{name}:1"]
    assert data["pushed"][0]["image"] == reference
    assert data["base_image"] == base_image.repo
    assert data["base_image_id"] == base_image.image_id
    assert data["base_image_digest"] == _base_digest(base_image)
    for step in ("fetch_source", "pull_base_image", "docker_build", "tag_and_push"):
        assert data["plugins_durations"][step] >= 0, step
    assert data["plugins_errors"] == {}
    assert data["log_file"] and Path(data["log_file"]).is_file()
    # the file reads back into the typed results
    results = BuildResults.from_dict(data)
    assert results.base_image_digest == data["base_image_digest"]
    assert results.digests == data["digests"]


def test_metadata_file_after_a_failed_build(tmp_path: Path, registry: Registry,
                                            base_image: BaseImage, engine_name: str) -> None:
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        RUN echo "{unique('fail')}" && exit 3
        """)
    metadata, iidfile = tmp_path / "meta.json", tmp_path / "iid"
    done = run_cli(["build", "path", "--uri", str(context), "--image", unique("failmeta"),
                    "--source-registry", registry.address,
                    "--metadata-file", str(metadata), "--iidfile", str(iidfile)])
    assert done.returncode == 3, done.stderr
    data = json.loads(metadata.read_text())
    assert data["failed"] is True
    assert data["error"]["type"] == "BuildFailed"
    assert data["error"]["exit_code"] == 3
    assert run_failed(engine_name, 3) in data["plugins_errors"]["docker_build"]
    assert data["image_id"] is None
    assert not iidfile.exists()  # no image, no id file
    assert data["base_image_digest"] == _base_digest(base_image)  # it was pulled


def test_base_image_digest_without_a_pull_comes_from_the_engine(
        tmp_path: Path, base_image: BaseImage) -> None:
    """``dont_pull_base_image``: the digest is read from the local image's RepoDigests."""
    context = write_context(tmp_path / "src", f"FROM {base_image.pushed}\n"
                                              f"RUN echo {unique('local')}\n")
    build_image_here(path_source(context), unique("prepull"),
                     parent_registry=base_image.registry.address)  # makes it local
    results = build_image_here(path_source(context), unique("nopull"),
                               dont_pull_base_image=True)
    assert not results.is_failed(), results.error
    assert results.base_image_digest == _base_digest(base_image)
