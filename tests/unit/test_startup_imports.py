"""What a build imports before its first engine call stays small (bench/cli_startup.py)."""

from __future__ import annotations

from atomic_reactor._image.push import COMPRESSIONS
from atomic_reactor.plugins import tag_and_push
from tests.support.imports import loaded_after


def test_tag_and_push_knows_the_compressions_of_our_push() -> None:
    assert tag_and_push.COMPRESSIONS == COMPRESSIONS


def test_a_buildah_build_imports_no_registry_client_nor_docker() -> None:
    assert loaded_after(
        ["atomic_reactor.cli.main", "atomic_reactor.inner", "atomic_reactor._engine.buildah",
         "atomic_reactor.plugins.tag_and_push", "atomic_reactor.plugins.pull_base_image"],
        ["docker", "requests", "jsonschema", "importlib.metadata", "tarfile",
         "atomic_reactor._image.push", "atomic_reactor._multiplatform",
         # http.client (email, ssl) only where a manifest is read or a transport
         # failed; uuid imports platform
         "http.client", "email", "ssl", "uuid", "platform"]) == []


def test_a_docker_build_imports_neither_the_docker_sdk_nor_requests() -> None:
    assert loaded_after(
        ["atomic_reactor.cli.main", "atomic_reactor.inner", "atomic_reactor._engine.docker",
         "atomic_reactor.plugins.tag_and_push", "atomic_reactor.plugins.pull_base_image"],
        ["docker", "requests", "urllib3", "jsonschema", "importlib.metadata",
         "atomic_reactor._image.layout", "atomic_reactor._image.push",
         # the transport speaks HTTP itself (_engine/docker/_http)
         "http.client", "email", "ssl"]) == []
