"""Unit tests of the retry policy (_retry) with a fake sleep."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atomic_reactor._retry import RetryPolicy, is_transient
from atomic_reactor.errors import (
    AtomicReactorError,
    AuthenticationError,
    BuildFailed,
    PullError,
    PushError,
    RegistryError,
)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def failing(errors: list[BaseException], result: str = "done"
            ) -> tuple[Callable[[], str], list[int]]:
    """A function raising ``errors`` one per call, then returning ``result``."""
    calls = [0]

    def func() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return result

    return func, calls


TRANSIENT = [
    "received unexpected HTTP status: 500 Internal Server Error",
    "received unexpected HTTP status: 502 Bad Gateway",
    "503 Service Unavailable",
    "504 Gateway Timeout",
    "read: connection reset by peer",
    "write: broken pipe",
    "unexpected EOF",
    "net/http: TLS handshake timeout",
    "dial tcp: i/o timeout",
    "toomanyrequests: rate limit exceeded",
    "429 Too Many Requests",
    "Read timed out.",
    "('Connection aborted.', RemoteDisconnected())",
]

PERMANENT = [
    "401 Unauthorized",
    "unauthorized: authentication required",
    "403 Forbidden",
    "denied: requested access to the resource is denied",
    "404 Not Found",
    "manifest unknown: manifest unknown",
    "name unknown: repository name not known to registry",
    "manifest invalid",
    "invalid reference format",
    "blob unknown",
    "no such host",
    "some other failure",
    "",
]


@pytest.mark.parametrize("message", TRANSIENT)
def test_transient_errors(message: str) -> None:
    assert is_transient(PullError(message)) is True
    assert is_transient(PushError(message.upper())) is True


@pytest.mark.parametrize("message", PERMANENT)
def test_permanent_errors(message: str) -> None:
    assert is_transient(PushError(message)) is False


def test_authentication_error_is_never_transient() -> None:
    assert is_transient(AuthenticationError("503 Service Unavailable")) is False


def test_auth_and_not_found_win_over_transient_hints() -> None:
    assert is_transient(PushError("timeout after 401 Unauthorized")) is False
    assert is_transient(PullError("503 then 404 Not Found")) is False


@pytest.mark.parametrize("message", [
    "pushing 127.0.0.1:5404/app:1: received unexpected HTTP status: 503 Service Unavailable",
    "pulling registry.example.com:4013/app: 502 Bad Gateway",
    "blob sha256:40412ab: connection reset by peer",
])
def test_status_codes_are_not_matched_inside_numbers(message: str) -> None:
    assert is_transient(PushError(message)) is True


# -- RetryPolicy.call ------------------------------------------------------------------------


def test_success_first_time_does_not_sleep() -> None:
    sleep = FakeSleep()
    func, calls = failing([])
    assert RetryPolicy(attempts=3, sleep=sleep).call("pushing x", func) == "done"
    assert calls == [1]
    assert sleep.calls == []


def test_transient_errors_are_retried_until_success() -> None:
    sleep = FakeSleep()
    retried: list[tuple[int, BaseException]] = []
    first, second = PushError("502 Bad Gateway"), PushError("connection reset by peer")
    func, calls = failing([first, second])
    policy = RetryPolicy(attempts=4, delay=1.0, factor=2.0, max_delay=30.0, sleep=sleep)
    assert policy.call("pushing x", func, on_retry=lambda n, e: retried.append((n, e))) == "done"
    assert calls == [3]
    assert len(sleep.calls) == 2
    assert retried == [(1, first), (2, second)]


def test_transient_errors_exhaust_attempts() -> None:
    sleep = FakeSleep()
    errors: list[BaseException] = [PullError(f"503 Service Unavailable #{i}") for i in range(5)]
    func, calls = failing(errors)
    with pytest.raises(PullError, match="#2"):
        RetryPolicy(attempts=3, sleep=sleep).call("pulling x", func)
    assert calls == [3]
    assert len(sleep.calls) == 2


def test_one_attempt_means_no_retry() -> None:
    sleep = FakeSleep()
    func, calls = failing([PushError("503 Service Unavailable")])
    with pytest.raises(PushError):
        RetryPolicy(attempts=1, sleep=sleep).call("pushing x", func)
    assert calls == [1]
    assert sleep.calls == []


@pytest.mark.parametrize("error", [
    PushError("401 Unauthorized"),
    PushError("403 Forbidden"),
    PullError("404 Not Found"),
    PullError("manifest unknown"),
    AuthenticationError("503 Service Unavailable"),
    AuthenticationError("no credentials"),
    BuildFailed("RUN exited 1"),
    RegistryError("something else"),
])
def test_permanent_errors_are_not_retried(error: AtomicReactorError) -> None:
    sleep = FakeSleep()
    func, calls = failing([error])
    with pytest.raises(type(error)) as info:
        RetryPolicy(attempts=5, sleep=sleep).call("op", func)
    assert info.value is error
    assert calls == [1]
    assert sleep.calls == []


def test_foreign_exceptions_are_not_retried() -> None:
    sleep = FakeSleep()
    func, calls = failing([ConnectionResetError("connection reset by peer")])
    with pytest.raises(ConnectionResetError):
        RetryPolicy(attempts=5, sleep=sleep).call("op", func)
    assert calls == [1]
    assert sleep.calls == []


def test_sleeps_follow_backoff_bounds() -> None:
    sleep = FakeSleep()
    errors: list[BaseException] = [PushError("503 Service Unavailable") for _ in range(6)]
    func, _ = failing(errors)
    policy = RetryPolicy(attempts=7, delay=0.5, factor=3.0, max_delay=5.0, sleep=sleep)
    assert policy.call("op", func) == "done"
    assert len(sleep.calls) == 6
    for n, waited in enumerate(sleep.calls, start=1):
        ceiling = min(5.0, 0.5 * 3.0 ** (n - 1))
        assert ceiling / 2 <= waited <= ceiling
    # the waits grow: 0.25-0.5, 0.75-1.5, 2.25-4.5, then capped at 2.5-5
    first, second, third = sleep.calls[:3]
    assert first < second < third
    assert all(2.5 <= waited <= 5.0 for waited in sleep.calls[3:])


@pytest.mark.parametrize("seed", range(20))
def test_default_policy_delays_never_shrink_until_the_cap(seed: int) -> None:
    import itertools
    import random

    random.seed(seed)
    sleep = FakeSleep()
    errors: list[BaseException] = [PushError("503 Service Unavailable") for _ in range(9)]
    func, _ = failing(errors)
    policy = RetryPolicy(attempts=10, sleep=sleep)
    assert policy.call("op", func) == "done"
    waits = sleep.calls
    assert len(waits) == 9
    # with doubling and jitter in [ceiling/2, ceiling], each wait is at least the one
    # before (the next one's floor is this one's ceiling)
    uncapped = [waited for n, waited in enumerate(waits, start=1)
                if policy.delay * policy.factor ** (n - 1) <= policy.max_delay]
    assert len(uncapped) == 5  # ceilings 1, 2, 4, 8, 16; then 30
    assert all(later >= earlier for earlier, later in itertools.pairwise(uncapped))
    assert uncapped[-1] >= 8 * uncapped[0]
    assert all(policy.max_delay / 2 <= waited <= policy.max_delay for waited in waits[5:])


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize("retry_number", range(1, 12))
def test_backoff_bounds(retry_number: int) -> None:
    policy = RetryPolicy(delay=1.0, factor=2.0, max_delay=30.0)
    ceiling = min(30.0, 2.0 ** (retry_number - 1))
    samples = [policy.backoff(retry_number) for _ in range(200)]
    assert all(0 < s <= ceiling for s in samples)
    assert max(samples) <= 30.0
    # jitter: not always the same wait
    assert len(set(samples)) > 1


def test_backoff_grows_then_caps() -> None:
    policy = RetryPolicy(delay=1.0, factor=2.0, max_delay=4.0)
    assert max(policy.backoff(1) for _ in range(100)) <= 1.0
    assert max(policy.backoff(10) for _ in range(100)) <= 4.0
    assert max(policy.backoff(50) for _ in range(100)) <= 4.0  # no overflow


def test_zero_delay_never_waits() -> None:
    policy = RetryPolicy(delay=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.0] * 5
    assert RetryPolicy(delay=5.0, max_delay=0.0).backoff(3) == 0.0


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"attempts": -1}, {"delay": -1.0},
                                    {"max_delay": -0.1}])
def test_invalid_policy(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_defaults() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 4
    assert policy.delay == 1.0
    assert policy.max_delay == 30.0
