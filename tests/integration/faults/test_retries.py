"""Retries of pulls and pushes (engine) and of registry HTTP calls, under faults a
proxy in front of a real registry produces for real.

What dockerd 20.10 does by itself (measured with the proxy, see docs/retries.md):
a blob upload that fails (5xx, dropped connection) is retried inside dockerd, 5
attempts 5/10/15/20 s apart; a manifest PUT or a manifest GET/HEAD that fails is
not retried, the push or pull fails at once. A push that only dockerd retried is
one attempt of ours; a fault that outlasts dockerd's attempts is recovered by ours.
"""

from __future__ import annotations

import logging

import docker
import pytest

from atomic_reactor._registry.client import ManifestNotFound, RegistryClient
from atomic_reactor._retry import RetryPolicy, is_transient
from atomic_reactor.core import DockerTasker
from atomic_reactor.errors import AuthenticationError, PullError, PushError, RegistryError
from tests.integration.faults.support import (
    RecordingSleep,
    UniqueImage,
    assert_registry_holds,
    drop_local,
    run_payload,
    tasker_with,
)
from tests.support.env import Registry, check_stream
from tests.support.faultproxy import Fault, FaultProxy

UPLOADS = "/v2/*/blobs/uploads/*"
MANIFESTS = "/v2/*/manifests/*"


def _via(proxy: FaultProxy, image: UniqueImage, engine: docker.APIClient) -> str:
    target = f"{proxy.address}/{image.name}:{image.tag}"
    engine.tag(image.image_id, f"{proxy.address}/{image.name}", image.tag)
    return target


# -- pushes ----------------------------------------------------------------------------------


def test_manifest_503_is_recovered_by_our_retry(
        engine: docker.APIClient, registry: Registry, proxy: FaultProxy,
        unique_image: UniqueImage, caplog: pytest.LogCaptureFixture) -> None:
    proxy.add(Fault.status(503, path=MANIFESTS, method="PUT", times=1))
    sleep = RecordingSleep()
    with caplog.at_level(logging.WARNING, logger="atomic_reactor._retry"):
        result = tasker_with(sleep).push(_via(proxy, unique_image, engine), insecure=True)
    assert result.attempts == 2
    retried = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retried) == 1
    assert "received unexpected HTTP status: 503 Service Unavailable" in retried[0]
    assert len(sleep.calls) == 1
    assert proxy.count("PUT", MANIFESTS, outcome="503") == 1
    assert proxy.count("PUT", MANIFESTS, outcome="forwarded") == 1
    assert_registry_holds(engine, registry, unique_image, unique_image.name, unique_image.tag,
                          result.digest)


@pytest.mark.parametrize("fault", [
    pytest.param(Fault.status(503, path=UPLOADS, method="POST", times=1), id="upload-503"),
    pytest.param(Fault.drop(after_bytes=1000, path=UPLOADS, method="PATCH", times=1),
                 id="patch-cut-after-1000-bytes"),
])
def test_fault_dockerd_retries_itself_is_one_attempt_and_a_success(
        engine: docker.APIClient, registry: Registry, proxy: FaultProxy,
        unique_image: UniqueImage, fault: Fault) -> None:
    proxy.add(fault)
    sleep = RecordingSleep()
    result = tasker_with(sleep).push(_via(proxy, unique_image, engine), insecure=True)
    assert fault.hits == 1  # the fault happened ...
    assert result.attempts == 1  # ... and dockerd's own retry hid it
    assert sleep.calls == []
    assert any("Retrying in" in line for line in result.logs)  # dockerd said so
    assert_registry_holds(engine, registry, unique_image, unique_image.name, unique_image.tag,
                          result.digest)


def test_upload_fault_outlasting_dockerd_retries_is_recovered_by_ours(
        engine: docker.APIClient, registry: Registry, proxy: FaultProxy,
        unique_image: UniqueImage) -> None:
    """Every blob upload fails until dockerd gives the push up (5 attempts per layer,
    about 50 s); our retry (its sleep heals the proxy) then pushes again."""
    fault = Fault.status(503, path=UPLOADS, method="POST", times=None)
    proxy.add(fault)
    sleep = RecordingSleep(before=proxy.clear)
    result = tasker_with(sleep).push(_via(proxy, unique_image, engine), insecure=True)
    assert result.attempts == 2
    assert len(sleep.calls) == 1
    assert fault.hits >= 5  # dockerd's own attempts of the first attempt
    assert_registry_holds(engine, registry, unique_image, unique_image.name, unique_image.tag,
                          result.digest)


def test_cut_connections_outlasting_dockerd_retries_are_recovered_by_ours(
        engine: docker.APIClient, registry: Registry, proxy: FaultProxy,
        unique_image: UniqueImage, caplog: pytest.LogCaptureFixture) -> None:
    """A connection cut in every blob upload until dockerd gives up: the text dockerd
    then reports is classified transient, and our retry pushes again."""
    fault = Fault.drop(after_bytes=0, path=UPLOADS, method="PATCH", times=None, reset=False)
    proxy.add(fault)
    sleep = RecordingSleep(before=proxy.clear)
    with caplog.at_level(logging.WARNING, logger="atomic_reactor._retry"):
        result = tasker_with(sleep).push(_via(proxy, unique_image, engine), insecure=True)
    assert result.attempts == 2
    retried = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retried) == 1
    # what dockerd 20.10 says for a connection closed under its upload
    assert "use of closed network connection" in retried[0] or "EOF" in retried[0] or \
        "connection reset by peer" in retried[0], retried[0]
    assert_registry_holds(engine, registry, unique_image, unique_image.name, unique_image.tag,
                          result.digest)


@pytest.mark.parametrize(("fault", "error", "needle"), [
    pytest.param(Fault.status(401, times=None,
                              headers={"WWW-Authenticate": 'Basic realm="faults"'}),
                 AuthenticationError, "no basic auth credentials", id="401-everywhere"),
    pytest.param(Fault.status(403, path=MANIFESTS, method="PUT", times=None),
                 AuthenticationError, "denied", id="403-on-manifest-put"),
    pytest.param(Fault.status(404, path=MANIFESTS, method="PUT", times=None),
                 PushError, "name unknown", id="404-on-manifest-put"),
    pytest.param(Fault.status(400, path=MANIFESTS, method="PUT", times=None),
                 PushError, "manifest invalid", id="400-manifest-invalid"),
])
def test_push_refused_is_not_retried(
        engine: docker.APIClient, proxy: FaultProxy, unique_image: UniqueImage,
        fault: Fault, error: type[Exception], needle: str) -> None:
    proxy.add(fault)
    sleep = RecordingSleep()
    with pytest.raises(error) as info:
        tasker_with(sleep).push(_via(proxy, unique_image, engine), insecure=True)
    assert sleep.calls == []  # no backoff: one attempt
    assert not is_transient(info.value)
    assert proxy.count("GET", "/v2/") == 1  # one push started
    assert needle in str(info.value)  # as dockerd words it


# -- pulls -----------------------------------------------------------------------------------


def test_pull_manifest_503_is_recovered_by_our_retry(
        engine: docker.APIClient, proxy: FaultProxy, pushed_unique: UniqueImage) -> None:
    # dockerd asks HEAD, then GET on an error: both fail, the pull fails, we retry
    proxy.add(Fault.status(503, path=MANIFESTS, times=2))
    sleep = RecordingSleep()
    source = f"{proxy.address}/{pushed_unique.name}:{pushed_unique.tag}"
    pulled = tasker_with(sleep).pull(source, insecure=True)
    assert pulled.attempts == 2
    assert pulled.image_id == pushed_unique.image_id
    assert proxy.count("GET", "/v2/*/blobs/*", outcome="forwarded") >= 1  # a layer came
    assert run_payload(engine, source) == pushed_unique.payload


def test_pull_blob_cut_is_retried_by_dockerd(
        engine: docker.APIClient, proxy: FaultProxy, pushed_unique: UniqueImage) -> None:
    fault = Fault.drop(path="/v2/*/blobs/sha256:*", method="GET", times=1)
    proxy.add(fault)
    sleep = RecordingSleep()
    source = f"{proxy.address}/{pushed_unique.name}:{pushed_unique.tag}"
    pulled = tasker_with(sleep).pull(source, insecure=True)
    assert fault.hits == 1
    assert pulled.attempts == 1
    assert pulled.image_id == pushed_unique.image_id
    assert run_payload(engine, source) == pushed_unique.payload


@pytest.mark.parametrize(("fault", "tag", "error", "needle"), [
    pytest.param(None, "no-such-tag", PullError, "not found", id="404-real"),
    pytest.param(Fault.status(401, times=None,
                              headers={"WWW-Authenticate": 'Basic realm="faults"'}),
                 None, AuthenticationError, "credentials", id="401"),
    pytest.param(Fault.status(403, path=MANIFESTS, times=None), None, AuthenticationError,
                 "denied", id="403"),
])
def test_pull_refused_is_not_retried(
        proxy: FaultProxy, pushed_unique: UniqueImage, fault: Fault | None, tag: str | None,
        error: type[Exception], needle: str) -> None:
    if fault is not None:
        proxy.add(fault)
    sleep = RecordingSleep()
    source = f"{proxy.address}/{pushed_unique.name}:{tag or pushed_unique.tag}"
    with pytest.raises(error) as info:
        tasker_with(sleep).pull(source, insecure=True)
    assert needle in str(info.value)
    assert not is_transient(info.value)
    assert sleep.calls == []
    assert proxy.count(None, "/v2/*/manifests/*") <= 2  # one HEAD (+ GET): one pull


# -- stalls: no answer at all ----------------------------------------------------------------


STALLS = [
    pytest.param("push", Fault.delay(600, path=MANIFESTS, method="PUT", times=1),
                 id="push-manifest-put"),
    pytest.param("pull", Fault.delay(600, path=MANIFESTS, times=1), id="pull-manifest"),
    pytest.param("pull", Fault.delay(600, path="/v2/*/blobs/sha256:*", method="GET", times=1),
                 id="pull-blob"),
]


@pytest.mark.parametrize(("operation", "fault"), STALLS)
def test_stalled_registry_times_out_and_is_retried(
        engine: docker.APIClient, registry: Registry, proxy: FaultProxy,
        unique_image: UniqueImage, operation: str, fault: Fault,
        caplog: pytest.LogCaptureFixture) -> None:
    """dockerd waits for a registry that never answers for ever; the tasker's timeout
    (here 3 s without progress) ends the attempt, and the next one gets through."""
    sleep = RecordingSleep()
    tasker = DockerTasker(timeout=3, retry=RetryPolicy(attempts=3, delay=0.01, sleep=sleep))
    if operation == "pull":
        target = f"{registry.address}/{unique_image.name}"
        engine.tag(unique_image.image_id, target, unique_image.tag)
        check_stream(engine.push(target, tag=unique_image.tag, stream=True, decode=True),
                     "pushing the test image")
        drop_local(engine, unique_image.image_id)
    proxy.add(fault)
    with caplog.at_level(logging.WARNING, logger="atomic_reactor._retry"):
        if operation == "push":
            result = tasker.push(_via(proxy, unique_image, engine), insecure=True)
            attempts = result.attempts
        else:
            source = f"{proxy.address}/{unique_image.name}:{unique_image.tag}"
            pulled = tasker.pull(source, insecure=True)
            attempts = pulled.attempts
            assert pulled.image_id == unique_image.image_id
    assert fault.hits == 1
    assert attempts == 2
    retried = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retried) == 1 and "no progress in 3 s (timed out)" in retried[0], retried
    if operation == "push":
        assert_registry_holds(engine, registry, unique_image, unique_image.name,
                              unique_image.tag, result.digest)
    else:
        assert run_payload(engine, source) == unique_image.payload


# -- direct registry calls -------------------------------------------------------------------


@pytest.mark.parametrize("fault", [
    pytest.param(Fault.status(503, path=MANIFESTS, method="HEAD", times=2), id="503-twice"),
    pytest.param(Fault.drop(path=MANIFESTS, method="HEAD", times=1), id="reset"),
    pytest.param(Fault.drop(path=MANIFESTS, method="HEAD", times=1, reset=False),
                 id="closed"),
])
def test_registry_client_retries_transient_faults(
        registry: Registry, proxy: FaultProxy, pushed_unique: UniqueImage,
        fault: Fault) -> None:
    with RegistryClient(registry.address) as direct:
        expected = direct.get_manifest_digest(pushed_unique.name, pushed_unique.tag)
    proxy.add(fault)
    sleep = RecordingSleep()
    policy = RetryPolicy(attempts=4, delay=0.01, sleep=sleep)
    with RegistryClient(proxy.address, insecure=True, retry=policy) as client:
        assert client.get_manifest_digest(pushed_unique.name, pushed_unique.tag) == expected
    assert len(sleep.calls) == fault.times
    assert proxy.count("HEAD", MANIFESTS, outcome="forwarded") == 1


@pytest.mark.parametrize(("fault", "error"), [
    pytest.param(Fault.status(401, path=MANIFESTS, times=None), AuthenticationError, id="401"),
    pytest.param(Fault.status(403, path=MANIFESTS, times=None), AuthenticationError, id="403"),
    pytest.param(Fault.status(404, path=MANIFESTS, times=None), ManifestNotFound, id="404"),
])
def test_registry_client_does_not_retry_refusals(
        proxy: FaultProxy, pushed_unique: UniqueImage, fault: Fault,
        error: type[RegistryError]) -> None:
    proxy.add(fault)
    sleep = RecordingSleep()
    policy = RetryPolicy(attempts=4, delay=0.01, sleep=sleep)
    with RegistryClient(proxy.address, insecure=True, retry=policy, auth=None) as client, \
            pytest.raises(error):
        client.get_manifest_digest(pushed_unique.name, pushed_unique.tag)
    assert sleep.calls == []
    assert fault.hits == 1
