"""Reproducible images on the real engine: two builds of one commit, one digest; the
check that builds twice and names what differs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from atomic_reactor._image.compare import compare_images
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from tests.integration.helpers import Outcome, git, git_repo, unique
from tests.support.env import BaseImage, Registry

DOCKERFILE = """\
FROM {base}
COPY app.txt /srv/app.txt
RUN mkdir -p /var/app && echo built > /var/app/state && cp /srv/app.txt /var/app/copy
"""


def _repo(tmp_path: Path, base_image: BaseImage, dockerfile: str = DOCKERFILE) -> Path:
    return git_repo(tmp_path / "repo", dockerfile.format(base=base_image.repo),
                    {"app.txt": "hello\n"})


@pytest.mark.both_engines
def test_two_builds_of_one_commit_push_one_digest(tmp_path: Path, base_image: BaseImage,
                                                   registry: Registry, engine_name: str) -> None:
    repo = _repo(tmp_path, base_image)
    commit_time = int(git(repo, "log", "-1", "--format=%ct"))
    name = unique()
    source = {"provider": "git", "uri": f"file://{repo}"}
    digests = []
    image_ids = []
    sboms = []
    for tag in ("first", "second"):
        if tag == "second":
            time.sleep(2.1)  # file times of a non-reproducible build would now differ
        results = build_image_here(source, f"{name}:{tag}", parent_registry=registry.address,
                                   target_registries=[registry.address],
                                   reproducible=True, use_cache=False, sbom=True,
                                   tasker=DockerTasker(engine=engine_name))
        results.raise_for_status()
        assert results.source_date_epoch == commit_time
        digests.append(results.digests[registry.address][f"{registry.address}/{name}:{tag}"])
        image_ids.append(results.image_id)
        sboms.append([(a.digest, a.document_digest) for a in results.attached])
        normalized = results.plugin_results["postbuild"]["reproducible"]
        # docker commits a layer per COPY/RUN; buildah bud one for the whole build
        assert normalized["rewritten_layers"] == (2 if engine_name == "docker" else 1)
    if image_ids[0] != image_ids[1]:  # say what differs
        tasker = DockerTasker(engine=engine_name)
        comparison = compare_images(tasker.save_image_stream, str(image_ids[0]),
                                    str(image_ids[1]), scratch_dir=str(tmp_path / "compare"))
        pytest.fail("\n".join(comparison.lines()))
    assert digests[0] == digests[1]
    assert len(sboms[0]) == 1 and sboms[0] == sboms[1]  # the SBOM is reproducible too
    with RegistryClient(registry.address) as client:
        manifest, digest = client.get_manifest(name, "second")
        assert digest == digests[0]
        config = json.loads(client.get_blob(name, manifest["config"]["digest"]))
    assert config["created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(commit_time))
    assert "container" not in config


@pytest.mark.both_engines
def test_check_names_the_file_whose_content_comes_from_date(
        tmp_path: Path, base_image: BaseImage, registry: Registry,
        cli: Callable[..., Outcome]) -> None:
    repo = _repo(tmp_path, base_image, "FROM {base}\nRUN date +%s%N > /built-at\n")
    name = unique()
    metadata = tmp_path / "results.json"
    outcome = cli("build", "git", "--uri", f"file://{repo}", "--image", f"{name}:1",
                  "--source-registry", registry.address, "--check-reproducible",
                  "--metadata-file", str(metadata))
    assert outcome.code == 7, outcome.stderr
    assert "layer 1 (/bin/sh -c date +%s%N > /built-at): /built-at: content" in outcome.stdout
    assert "error: two builds of" in outcome.last_line()
    check = json.loads(metadata.read_text())["reproducibility"]
    assert check["identical"] is False
    assert [f["path"] for f in check["layers"][0]["files"]] == ["/built-at"]
    assert outcome.new_containers == []
    assert outcome.tmp_leftovers == []
    # one image is left: the second build's, under the name (the first one is removed)
    assert len(outcome.new_images) == 1


@pytest.mark.both_engines
def test_check_passes_when_the_builds_are_identical(
        tmp_path: Path, base_image: BaseImage, registry: Registry,
        cli: Callable[..., Outcome]) -> None:
    repo = _repo(tmp_path, base_image)
    name = unique()
    outcome = cli("build", "git", "--uri", f"file://{repo}", "--image", f"{name}:1",
                  "--source-registry", registry.address, "--check-reproducible",
                  "--check-delay", "2")
    assert outcome.code == 0, outcome.stderr
    assert "identical: both builds are image sha256:" in outcome.stdout
    assert outcome.new_containers == []


def test_api_check_reproducible(tmp_path: Path, base_image: BaseImage,
                                registry: Registry) -> None:
    """The API's check: a typed result that names the file made by ``date``, and says
    identical for a build without it."""
    from atomic_reactor.api import ReproducibilityCheck, check_reproducible
    from atomic_reactor.errors import NotReproducible

    differing = git_repo(tmp_path / "differing",
                         f"FROM {base_image.repo}\nRUN date +%s%N > /built-at\n")
    name = unique()
    check = check_reproducible({"provider": "git", "uri": f"file://{differing}"},
                               f"{name}:1", parent_registry=registry.address, delay=1)
    assert isinstance(check, ReproducibilityCheck)
    assert not check.identical
    assert check.first.image_id != check.second.image_id
    [layer] = check.comparison.layers
    assert [change.path for change in layer.files] == ["built-at"]
    assert "content" in layer.files[0].what
    assert check.results().reproducibility == check.comparison.to_dict()
    with pytest.raises(NotReproducible, match="differ: 1 layer"):
        check.raise_for_status()
    # the first image was removed, the second keeps the name
    tasker = DockerTasker()
    assert not tasker.image_exists(str(check.first.image_id))
    tasker.remove_image(str(check.second.image_id), force=True)

    same = _repo(tmp_path, base_image)
    check = check_reproducible({"provider": "git", "uri": f"file://{same}"},
                               f"{unique()}:1", parent_registry=registry.address)
    assert check.identical, "\n".join(check.comparison.lines())
    assert check.first.image_id == check.second.image_id
    assert check.comparison.lines()[0].startswith("identical: both builds are image sha256:")
    check.raise_for_status()
    tasker.remove_image(str(check.second.image_id), force=True)
