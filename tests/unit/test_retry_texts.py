"""is_transient on the error texts the engine (dockerd 20.10) and requests really
produce for each fault; tests/integration/faults produces every one of them through
a fault proxy. The ports are real-looking ephemeral ports: several contain 401, 403
or 404, which must not read as a refusal.
"""

from __future__ import annotations

import signal

import pytest

from atomic_reactor._retry import is_transient
from atomic_reactor.errors import (
    AuthenticationError,
    BuildCancelled,
    EngineError,
    EngineUnavailable,
    PullError,
    PushError,
    RegistryError,
)

TRANSIENT = [
    # manifest PUT or HEAD/GET answered 503 (dockerd does not retry these itself)
    PushError("pushing 127.0.0.1:40312/app:1 failed: received unexpected HTTP status: "
              "503 Service Unavailable"),
    PullError("pulling 127.0.0.1:34013/app:1 failed: received unexpected HTTP status: "
              "503 Service Unavailable"),
    # blob upload cut, after dockerd's own 5 attempts (with and without a TCP reset)
    PushError("pushing 127.0.0.1:43701/app:1 failed: write tcp 127.0.0.1:40452->"
              "127.0.0.1:43701: write: connection reset by peer"),
    PushError("pushing 127.0.0.1:34491/app:1 failed: write tcp 127.0.0.1:41134->"
              "127.0.0.1:34491: use of closed network connection"),
    # manifest request cut (pull)
    PullError('pulling 127.0.0.1:33377/app:1 failed: Head "http://127.0.0.1:33377/v2/app/'
              'manifests/1": read tcp 127.0.0.1:36728->127.0.0.1:33377: read: connection '
              "reset by peer"),
    PullError('pulling 127.0.0.1:42525/app:404 failed: Head "http://127.0.0.1:42525/v2/app/'
              'manifests/404": EOF'),
    # the engine stream showed no progress for the tasker's timeout (stalled registry)
    PushError("pushing 127.0.0.1:44040/app:1 failed: no progress in 120 s (timed out)"),
    PullError("pulling 127.0.0.1:40401/app:1 failed: no progress in 3 s (timed out)"),
    # RegistryClient (requests)
    RegistryError("HEAD /v2/app/manifests/1 on 127.0.0.1:40403: status 503 Service "
                  "Unavailable"),
    RegistryError("registry 127.0.0.1:40404 is unreachable (connection reset)"),
    RegistryError("registry 127.0.0.1:40404 is unreachable (remote end closed connection)"),
    RegistryError("registry 127.0.0.1:5000 timed out"),
    # upload ids and digests with 401/403/404 inside
    PushError('pushing r:1 failed: Patch "http://127.0.0.1:5000/v2/app/blobs/uploads/'
              '3ee814d2-404a-4403-a401-1cacf1c91011": write: broken pipe'),
    PushError("pushing r:1 failed: blob sha256:404403401aa: connection reset by peer"),
]

PERMANENT = [
    AuthenticationError("pushing 127.0.0.1:41915/app:1 failed: no basic auth credentials"),
    PushError("pushing 127.0.0.1:41915/app:1 failed: no basic auth credentials"),
    PushError("pushing 127.0.0.1:45071/app:1 failed: denied: requested access to the "
              "resource is denied"),
    PushError("pushing 127.0.0.1:40507/app:1 failed: name unknown: repository name not "
              "known to registry"),
    PullError("pulling 127.0.0.1:46709/app:nope failed: manifest for 127.0.0.1:46709/app:"
              "nope not found: manifest unknown: manifest unknown"),
    PullError("pulling 127.0.0.1:37285/app:1 failed: pull access denied for "
              "127.0.0.1:37285/app, repository does not exist or may require 'docker "
              "login': denied: requested access to the resource is denied"),
    PullError('pulling 127.0.0.1:44241/app:1 failed: Head "http://127.0.0.1:44241/v2/app/'
              'manifests/1": no basic auth credentials'),
    PushError("pushing r:1 failed: manifest invalid: manifest invalid"),
    RegistryError("registry 127.0.0.1:5000 is unreachable (connection refused)"),
    RegistryError("HEAD /v2/app/manifests/1 on 127.0.0.1:5000: status 404 Not Found"),
    # no engine, a cancel: never worth another attempt
    EngineUnavailable("no container engine answers at socket /run/x.sock (connection "
                      "aborted); is dockerd running?"),
    EngineUnavailable("pushing r:1: the connection to the engine at socket /run/x.sock "
                      "broke off (connection reset); did dockerd stop?"),
    BuildCancelled(signal.SIGTERM),
    BuildCancelled(signal.SIGINT),
    EngineError("building app:1 failed: something else entirely"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: str(e)[-60:])
def test_real_transient_texts(error: Exception) -> None:
    assert is_transient(error) is True


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: str(e)[-60:])
def test_real_permanent_texts(error: Exception) -> None:
    assert is_transient(error) is False
