"""The multi-arch test bases and ``push_manifest_list`` against a real registry."""

from __future__ import annotations

import json
import subprocess

import pytest

from atomic_reactor._registry.client import RegistryClient
from atomic_reactor._registry.manifest_list import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    ManifestListEntry,
    list_entries,
    push_manifest_list,
)
from atomic_reactor.errors import InputError, RegistryError
from tests.support.env import Registry
from tests.support.multiarch import AMD64, ARM64, MultiArchBase, busybox_for, read_image_file

pytestmark = pytest.mark.both_engines  # the docker and the buildah engine


def _skopeo_raw(reference: str) -> dict[str, object]:
    done = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                           f"docker://{reference}"], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(("fixture", "media_type"), [
    ("multiarch_base", DOCKER_MANIFEST_LIST), ("oci_multiarch_base", OCI_INDEX)])
def test_base_is_a_list_of_two_platforms(request: pytest.FixtureRequest, registry: Registry,
                                         fixture: str, media_type: str) -> None:
    base: MultiArchBase = request.getfixturevalue(fixture)
    document = _skopeo_raw(base.reference)
    assert document["mediaType"] == media_type
    assert {e.platform: e.digest for e in list_entries(document)} == base.digests
    assert set(base.digests) == {AMD64, ARM64}
    with RegistryClient(registry.address, insecure=True) as client:
        assert client.get_manifest_digest(base.repository, base.tag) == base.pushed.digest
        for platform in (AMD64, ARM64):
            arch, data = read_image_file(client, base.repository, base.tag, platform,
                                         "/bin/busybox")
            assert arch == platform.architecture
            assert data == busybox_for(platform).read_bytes()


def test_arm64_busybox_runs_under_emulation(emulation: None) -> None:
    done = subprocess.run([str(busybox_for(ARM64)), "uname", "-m"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "aarch64"


def test_push_manifest_list_under_several_tags(registry: Registry,
                                               multiarch_base: MultiArchBase) -> None:
    entries = [ManifestListEntry(digest, platform)
               for platform, digest in sorted(multiarch_base.digests.items(), reverse=True)]
    pushed = push_manifest_list(registry.address, multiarch_base.repository,
                                ["relisted", "relisted-2"], entries, insecure=True)
    assert pushed.media_type == DOCKER_MANIFEST_LIST
    assert pushed.references == (f"{registry.address}/multiarch/busybox:relisted",
                                 f"{registry.address}/multiarch/busybox:relisted-2")
    for tag in ("relisted", "relisted-2"):
        document = _skopeo_raw(f"{registry.address}/multiarch/busybox:{tag}")
        assert [e.platform for e in list_entries(document)] == [ARM64, AMD64]
    with RegistryClient(registry.address, insecure=True) as client:
        assert client.get_manifest_digest("multiarch/busybox", "relisted") == pushed.digest


def test_push_manifest_list_refuses_what_is_not_there(registry: Registry,
                                                      multiarch_base: MultiArchBase) -> None:
    missing = ManifestListEntry("sha256:" + "0" * 64, ARM64)
    present = ManifestListEntry(multiarch_base.digests[AMD64], AMD64)
    with pytest.raises(RegistryError, match=r"linux/arm64 manifest sha256:0+ is not in"):
        push_manifest_list(registry.address, multiarch_base.repository, ["never"],
                           [present, missing], insecure=True)
    with pytest.raises(RegistryError, match="not an image manifest"):
        push_manifest_list(registry.address, multiarch_base.repository, ["never"],
                           [ManifestListEntry(multiarch_base.pushed.digest, ARM64)],
                           insecure=True)
    with pytest.raises(InputError, match="at least one tag"):
        push_manifest_list(registry.address, multiarch_base.repository, [], [present],
                           insecure=True)
    with RegistryClient(registry.address, insecure=True) as client:
        assert "never" not in client.list_tags(multiarch_base.repository)
