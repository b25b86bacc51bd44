"""Our own push (tag_and_push ``push_method: registry``) against real registries.

A build pushed to three registries is checked blob by blob; a second repository
in one registry gets its blobs by cross-repository mount; a push through the
fault proxy survives broken and refused chunks; zstd and uncompressed layers are
read back by skopeo; credentials come from the docker config.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._image.blobcache import LayerDigestCache
from atomic_reactor._image.push import ImagePush, PushSettings, RegistryTarget, engine_archive
from atomic_reactor._reference import ImageName
from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._retry import RetryPolicy
from atomic_reactor.api import build_image_here
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AuthenticationError, ImageNotFound
from tests.integration.helpers import path_source, unique, write_context
from tests.support.env import BaseImage, Registry
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.images import sh

DOCKERFILE = """\
FROM {base}
RUN head -c 6000000 /dev/urandom > /big && echo {payload} > /payload
"""


@pytest.fixture
def built(tasker: DockerTasker, base_image: BaseImage, tmp_path: Path) -> tuple[str, str]:
    """A local image with a 6 MB layer of its own: (image id, payload)."""
    payload = unique("payload")
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image.local,
                                                                payload=payload))
    name = unique("art-push")
    return tasker.build_image(str(context), f"{name}:src").image_id, payload


def blob_head(client: RegistryClient, repo: str, digest: str) -> int | None:
    response = client.request("HEAD", f"/v2/{repo}/blobs/{digest}", repo)
    return int(response.headers["Content-Length"]) if response.status_code == 200 else None


def check_pushed(registry: str, repo: str, tag: str, digest: str) -> dict[str, Any]:
    """Every blob of ``repo:tag`` is in ``registry`` with its digest and size; the
    manifest's digest is ``digest``. Returns the manifest."""
    with RegistryClient(registry) as client:
        manifest, served = client.get_manifest(repo, tag)
        assert served == digest
        for descriptor in [manifest["config"], *manifest["layers"]]:
            assert blob_head(client, repo, descriptor["digest"]) == descriptor["size"], \
                f"{registry}/{repo}: blob {descriptor['digest']}"
            if descriptor is manifest["config"]:
                config = client.get_blob(repo, descriptor["digest"])
                assert "sha256:" + __import__("hashlib").sha256(config).hexdigest() == \
                    descriptor["digest"]
    return manifest


def skopeo_raw(reference: str) -> bytes:
    done = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{reference}"], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def skopeo_copy(reference: str, dest: Path) -> None:
    done = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                           f"docker://{reference}", f"oci:{dest}:x"], capture_output=True,
                          check=False, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.both_engines
def test_build_pushed_to_three_registries(engine_name: str, base_image: BaseImage,
                                          registry: Registry, more_registries: list[Registry],
                                          tmp_path: Path) -> None:
    payload = unique("payload")
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image.repo,
                                                                payload=payload))
    name = unique("art-push")
    registries = [registry.address, *(r.address for r in more_registries)]
    results = build_image_here(path_source(context), f"{name}:1.0",
                               parent_registry=registry.address, target_registries=registries)
    results.raise_for_status()
    manifests = []
    for address in registries:
        ref = f"{address}/{name}:1.0"
        digest = results.digests[address][ref]
        manifest = check_pushed(address, name, "1.0", digest)
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert {layer["mediaType"] for layer in manifest["layers"]} == \
            {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
        raw = skopeo_raw(ref)
        assert "sha256:" + __import__("hashlib").sha256(raw).hexdigest() == digest
        manifests.append(manifest)
    # the same blobs everywhere (compressed once)
    assert manifests[0] == manifests[1] == manifests[2]
    pushed = {p.image: p for p in results.pushed}
    assert set(pushed) == {f"{a}/{name}:1.0" for a in registries}
    assert all(p.size == len(skopeo_raw(p.image)) for p in pushed.values())
    skopeo_copy(f"{more_registries[0].address}/{name}:1.0", tmp_path / "copy")
    # pulled back by the engine (no local copy left) and run
    assert results.image_id
    tasker = DockerTasker(engine=engine_name)
    info = tasker.image_info(results.image_id)
    for ref in (*info.names, *info.digests):
        with contextlib.suppress(ImageNotFound):  # a digest reference went with its name
            tasker.remove_image(ref)
    assert tasker.find_image(results.image_id) is None
    pulled = f"{more_registries[1].address}/{name}:1.0"
    tasker.pull(pulled, insecure=True)
    assert sh(tasker, pulled, "cat /payload").strip() == payload


def test_second_repository_gets_blobs_by_mount(registry: Registry, built: tuple[str, str],
                                               tasker: DockerTasker) -> None:
    image_id, _ = built
    first, second = unique("art-mount-a"), unique("art-mount-b")
    with FaultProxy(registry.address) as proxy:
        target = RegistryTarget(proxy.address, names=(
            ImageName.parse(f"{proxy.address}/{first}:1"),
            ImageName.parse(f"{proxy.address}/{second}:1")))
        prepared, results = ImagePush(saved=lambda: engine_archive(tasker, image_id)).run(
            [target])
        mounts = proxy.seen("POST", f"/v2/{second}/blobs/uploads/*")
        sent = proxy.seen("PATCH", f"/v2/{second}/*") + proxy.seen("PUT", f"/v2/{second}/blobs/*")
    blobs = len(prepared.blobs)
    assert results[0].mounted == blobs, results[0]
    assert results[0].uploaded == blobs  # into the first repository only (none skipped there)
    assert len(mounts) == blobs and all(seen.status == 201 for seen in mounts)
    # a POST answered 201 is a mount (the proxy records paths without the query)
    assert not sent, "no data went to the second repository"
    for repo in (first, second):
        check_pushed(registry.address, repo, "1", prepared.digest)


@pytest.mark.parametrize("fault", ["drop", "status"])
def test_push_through_faults_completes(registry: Registry, built: tuple[str, str],
                                       tasker: DockerTasker, fault: str) -> None:
    image_id, _ = built
    repo = unique("art-push-fault")
    settings = PushSettings(chunk_size=1 << 20, retry=RetryPolicy(attempts=4, delay=0.05))
    with FaultProxy(registry.address) as proxy:
        # the third chunk of an upload breaks: the connection is cut half-way, or refused
        if fault == "drop":
            proxy.add(Fault.drop(after_bytes=300_000, method="PATCH", path="*/blobs/uploads/*"))
        else:
            proxy.add(Fault.status(503, method="PATCH", path="*/blobs/uploads/*"))
        target = RegistryTarget(proxy.address,
                                names=(ImageName.parse(f"{proxy.address}/{repo}:1"),))
        prepared, results = ImagePush(saved=lambda: engine_archive(tasker, image_id),
                                      settings=settings, live=False).run([target])
        patches = proxy.seen("PATCH")
        statuses = proxy.seen("GET", "*/blobs/uploads/*")
    assert results[0].retries >= 1
    if fault == "status":  # the registry never saw the chunk: the upload resumes
        assert results[0].resumed >= 1 and results[0].restarted == 0
    else:  # the registry kept half a chunk and dropped the session: the blob starts again
        assert results[0].restarted + results[0].resumed >= 1
    assert any(seen.outcome != "forwarded" for seen in patches)
    assert statuses, "the upload's status was asked for"
    assert results[0].tags[0].attempts >= 2
    check_pushed(registry.address, repo, "1", prepared.digest)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_other_compressions_read_back_by_skopeo(registry: Registry, built: tuple[str, str],
                                                tasker: DockerTasker, compression: str,
                                                tmp_path: Path) -> None:
    image_id, _ = built
    repo = unique(f"art-push-{compression}")
    ref = f"{registry.address}/{repo}:1"
    prepared, results = ImagePush(saved=lambda: engine_archive(tasker, image_id),
                                  settings=PushSettings(compression=compression)).run(
        [RegistryTarget(registry.address, names=(ImageName.parse(ref),))])
    manifest = json.loads(skopeo_raw(ref))
    expected = {"zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                "none": "application/vnd.docker.image.rootfs.diff.tar"}[compression]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {expected}
    if compression == "zstd":
        assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    else:
        # uncompressed: the blobs are the layers themselves
        assert [layer["digest"] for layer in manifest["layers"]] == list(prepared.diff_ids)
    assert results[0].tags[0].digest == prepared.digest
    skopeo_copy(ref, tmp_path / "copy")  # every blob read back and verified by skopeo
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert index["manifests"]


def test_auth_registry(auth_registry: Registry, docker_config: Path, built: tuple[str, str],
                       tasker: DockerTasker, monkeypatch: pytest.MonkeyPatch) -> None:
    image_id, _ = built
    repo = unique("art-push-auth")
    ref = ImageName.parse(f"{auth_registry.address}/{repo}:1")
    push = ImagePush(saved=lambda: engine_archive(tasker, image_id))
    prepared, results = push.run([RegistryTarget(auth_registry.address, names=(ref,))])
    assert results[0].tags[0].digest == prepared.digest
    with RegistryClient(auth_registry.address) as client:
        assert client.get_manifest_digest(repo, "1") == prepared.digest
    # without credentials: refused, in one clear error
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config.parent / "nothing-here"))
    with pytest.raises(AuthenticationError, match="requires credentials"):
        ImagePush(saved=lambda: engine_archive(tasker, image_id)).run(
            [RegistryTarget(auth_registry.address, names=(ref.copy(tag="2"),))])


def test_engine_push_method_still_works(base_image: BaseImage, registry: Registry,
                                        tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image.repo,
                                                                payload="engine"))
    name = unique("art-push-engine")
    results = build_image_here(
        path_source(context), f"{name}:1", parent_registry=registry.address,
        postbuild_plugins=[{"name": "tag_and_push", "args": {
            "registries": {registry.address: {"insecure": True}}, "push_method": "engine"}}])
    results.raise_for_status()
    ref = f"{registry.address}/{name}:1"
    check_pushed(registry.address, name, "1", results.digests[registry.address][ref])


def test_live_upload_and_its_fallback(registry: Registry, built: tuple[str, str],
                                      tasker: DockerTasker, tmp_path: Path) -> None:
    """A new layer is uploaded while it is compressed; when that upload breaks, the
    regular upload (HEAD first) puts it there all the same."""
    image_id, _ = built
    cache = LayerDigestCache(tmp_path / "cache.json")
    settings = PushSettings(chunk_size=1 << 20, retry=RetryPolicy(attempts=3, delay=0.05))
    with FaultProxy(registry.address) as proxy:
        repo = unique("art-push-live")
        target = RegistryTarget(proxy.address,
                                names=(ImageName.parse(f"{proxy.address}/{repo}:1"),))
        prepared, results = ImagePush(saved=lambda: engine_archive(tasker, image_id),
                                      settings=settings, cache=cache).run([target])
        # the layers went up during compression: the regular stage sent the config only
        assert results[0].bytes_sent == prepared.config.size, results[0]
        check_pushed(registry.address, repo, "1", prepared.digest)
        # the same layers again (a new cache: not seen before), a chunk breaks on the way
        proxy.add(Fault.drop(after_bytes=200_000, method="PATCH", path="*/blobs/uploads/*"))
        again = unique("art-push-live")
        target = RegistryTarget(proxy.address,
                                names=(ImageName.parse(f"{proxy.address}/{again}:1"),))
        second, results = ImagePush(saved=lambda: engine_archive(tasker, image_id),
                                    settings=settings,
                                    cache=LayerDigestCache(tmp_path / "other.json")).run(
            [target])
        assert any(seen.outcome != "forwarded" for seen in proxy.seen("PATCH"))
        # seen before: nothing is uploaded live, the layers are mounted from the first push
        proxy.clear()
        third = unique("art-push-live")
        prepared3, results3 = ImagePush(saved=lambda: engine_archive(tasker, image_id),
                                        settings=settings, cache=cache).run(
            [RegistryTarget(proxy.address,
                            names=(ImageName.parse(f"{proxy.address}/{third}:1"),))])
    assert second.digest == prepared.digest  # compression is deterministic
    # the layer whose live upload broke went again, the regular way
    assert results[0].bytes_sent >= min(blob.size for blob in second.layers)
    check_pushed(registry.address, again, "1", second.digest)
    assert results3[0].mounted == len(prepared3.layers), results3[0]
    assert results3[0].uploaded == 1  # the config
    check_pushed(registry.address, third, "1", prepared3.digest)


def _open_sessions(registry: Registry, repo: str) -> list[str]:
    """The upload sessions the registry keeps open in ``repo`` (its storage, read directly:
    a session has its ``startedat`` file; distribution 2.8 writes a cancelled session's
    hash state again after removing it, so an empty directory with that may stay)."""
    uploads = registry.root / "storage" / "docker" / "registry" / "v2" / "repositories" \
        / repo / "_uploads"
    return sorted(path.parent.name for path in uploads.glob("*/startedat"))


def test_sessions_opened_ahead_are_used_or_cancelled(registry: Registry,
                                                     more_registries: list[Registry],
                                                     built: tuple[str, str],
                                                     tasker: DockerTasker,
                                                     tmp_path: Path) -> None:
    """Each registry's first upload session is opened while the engine exports the image:
    a new layer goes up through it; a push with no new layer cancels it. Either way no
    session is left open, and the layers and config went up before the manifest."""
    image_id, _ = built
    cache = LayerDigestCache(tmp_path / "cache.json")
    registries = [registry, *more_registries]

    def push() -> tuple[Any, list[Any]]:
        repo = unique("art-push-ahead")
        targets = [RegistryTarget(one.address,
                                  names=(ImageName.parse(f"{one.address}/{repo}:1"),))
                   for one in registries]
        prepared, results = ImagePush(saved=lambda: engine_archive(tasker, image_id),
                                      cache=cache).run(targets)
        for one in registries:
            check_pushed(one.address, repo, "1", prepared.digest)
            assert _open_sessions(one, repo) == [], one.address
        return prepared, results

    _, fresh = push()  # every layer new: uploaded live through the sessions opened ahead
    assert all(result.uploaded == 1 + 2 for result in fresh), fresh  # 2 layers, the config
    known, results = push()  # seen before: mounted, the sessions opened ahead cancelled
    assert all(result.mounted == 2 and result.uploaded == 1 for result in results), results
    store = tmp_path / "blobs"
    assert len(list(store.iterdir())) == 2  # kept: layers pushed before
    again, results = push()  # taken from the blob store, not compressed again
    assert again.manifest == known.manifest
    # each layer the push's own link to the kept blob (named so by the store)
    assert all(str(layer.path).endswith(".kept") for layer in again.layers), again.layers
