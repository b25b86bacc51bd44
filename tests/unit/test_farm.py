"""The farm's pieces that need no Redis: settings, payloads, secrets, status records, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from atomic_reactor import farm
from atomic_reactor.errors import InputError
from atomic_reactor.farm._config import FarmConfig, platform_queue
from atomic_reactor.farm._payload import (
    MAX_SOURCE_BYTES,
    decrypt_secrets,
    encrypt_secrets,
    generate_key,
    pack_path_source,
    source_directory,
    unpack_source,
)
from atomic_reactor.farm._records import FarmStatus
from atomic_reactor.farm._worker import worker_queues
from tests.support.imports import loaded_after

NO_REDIS = "redis://127.0.0.1:6399/0"  # nothing listens there in these tests


def test_broker_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOMIC_REACTOR_BROKER", raising=False)
    with pytest.raises(InputError, match="no broker: give --broker"):
        FarmConfig.resolve()
    monkeypatch.setenv("ATOMIC_REACTOR_BROKER", "redis://10.0.0.1:6390/2")
    assert FarmConfig.resolve().broker == "redis://10.0.0.1:6390/2"
    assert FarmConfig.resolve("redis://h:1/0").broker == "redis://h:1/0"
    with pytest.raises(InputError, match="is not a redis://"):
        FarmConfig.resolve("amqp://h:5672")
    config = FarmConfig.resolve("redis://:hunter22@h:6390/0")
    assert "hunter22" not in config.safe_broker and "***" in config.safe_broker
    with pytest.raises(InputError, match="at least 3 seconds"):
        FarmConfig.resolve("redis://h:1/0", visibility_timeout=1)


def test_visibility_lease_is_renewed_well_within_the_timeout() -> None:
    config = FarmConfig("redis://h:1/0", visibility_timeout=15)
    assert config.lease_interval == 5
    options = config.transport_options()
    assert options["visibility_timeout"] == 15
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 2


def test_worker_queues_per_platform() -> None:
    assert worker_queues([], ["linux/amd64"]) == ["atomic-reactor", "atomic-reactor@linux-amd64"]
    assert worker_queues(["a", "b"], ["linux/amd64", "linux/arm64"]) == [
        "a", "a@linux-amd64", "a@linux-arm64", "b", "b@linux-amd64", "b@linux-arm64"]
    assert platform_queue("q", "linux/arm/v7") == "q@linux-arm-v7"


def test_path_source_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "Dockerfile").write_text("FROM scratch\n")
    (source / "sub" / "file.txt").write_text("content\n")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    assert source_directory({"uri": f"file://{source}"}) == str(source)
    packed = pack_path_source(str(source))
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_source(packed, str(dest))
    assert (dest / "sub" / "file.txt").read_text() == "content\n"
    assert (dest / "Dockerfile").read_text() == "FROM scratch\n"
    assert os.stat(dest / "run.sh").st_mode & 0o111


def test_a_path_source_over_the_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(200_000))
    with pytest.raises(InputError) as caught:
        pack_path_source(str(tmp_path), limit=100_000)
    message = str(caught.value)
    assert "\n" not in message
    assert "larger than the farm's limit" in message and "git source" in message
    assert MAX_SOURCE_BYTES == 50 * 1024 * 1024


def test_a_missing_path_source_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a directory"):
        source_directory({"uri": f"file://{tmp_path}/nothing"})
    with pytest.raises(InputError, match="not a local directory"):
        source_directory({"uri": "https://example.org/x"})


def test_secrets_travel_encrypted_with_the_shared_key(tmp_path: Path) -> None:
    key = tmp_path / "farm.key"
    key.write_text(generate_key() + "\n")
    token = encrypt_secrets(["buildargs.TOKEN=very-secret-1"], str(key))
    assert "very-secret-1" not in token
    assert decrypt_secrets(token, str(key)) == ["buildargs.TOKEN=very-secret-1"]
    other = tmp_path / "other.key"
    other.write_text(generate_key())
    with pytest.raises(InputError, match="do not decrypt"):
        decrypt_secrets(token, str(other))
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(InputError, match="does not hold a key"):
        encrypt_secrets(["a=b"], str(bad))


def test_a_secret_is_refused_without_a_key_before_anything_is_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATOMIC_REACTOR_FARM_KEY_FILE", raising=False)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    request = {"source": {"provider": "path", "uri": f"file://{tmp_path}"}, "image": "x:1"}
    with pytest.raises(InputError) as caught:
        farm.submit(request, broker=NO_REDIS, secret_substitutions=["buildargs.T=s3cr3t-x"])
    assert "does not encrypt its messages" in str(caught.value)
    assert "s3cr3t-x" not in str(caught.value)


def test_bad_requests_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'image' is missing"):
        farm.submit({"source": {"provider": "git", "uri": "x"}}, broker=NO_REDIS)
    with pytest.raises(InputError, match="log_file is not for farm builds"):
        farm.submit({"source": {"provider": "git", "uri": "x"}, "image": "a:1",
                     "log_file": str(tmp_path / "l")}, broker=NO_REDIS)
    with pytest.raises(InputError, match="invalid platform"):
        farm.submit({"source": {"provider": "git", "uri": "x"}, "image": "a:1",
                     "platforms": ["linux/"]}, broker=NO_REDIS)


def test_an_unreachable_broker_is_one_farm_error() -> None:
    with pytest.raises(farm.FarmError, match=r"cannot reach the farm at redis://127\.0\.0\.1:6399"):
        farm.submit({"source": {"provider": "git", "uri": "https://example.invalid/x.git"},
                     "image": "a:1"}, broker=NO_REDIS)


def test_status_record_round_trip() -> None:
    record = {"state": "running", "worker": "w2", "attempts": "2", "image": "app:1",
              "submitted_at": "1700000000.5", "started_at": "1700000001", "queue": "q",
              "cancel": "1", "children": "a,b"}
    status = FarmStatus.from_record("abc", record)
    assert status.state == "running" and status.worker == "w2" and status.attempts == 2
    assert status.submitted_at is not None and status.submitted_at.year == 2023
    assert status.finished_at is None and not status.done
    assert status.cancel_requested and status.children == ("a", "b")
    data = status.to_dict()
    assert data["state"] == "running" and data["started_at"].startswith("2023-11-14T22:13:21")
    assert FarmStatus.from_record("x", {"state": "bogus"}).state == "queued"


@pytest.mark.parametrize("command", [["--help"], ["worker", "--help"], ["submit", "--help"],
                                     ["farm", "status", "--help"]])
def test_the_command_line_does_not_import_celery_for_help(command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "atomic_reactor", *command],
                          capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in ("celery", "kombu", "redis")}


def test_importing_the_farm_does_not_import_celery() -> None:
    assert loaded_after(["atomic_reactor", "atomic_reactor.farm"], ["celery"]) == []


def test_keygen_prints_a_usable_key(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "atomic_reactor", "farm", "keygen"],
                          capture_output=True, text=True, check=True)
    key = tmp_path / "k"
    key.write_text(done.stdout)
    assert decrypt_secrets(encrypt_secrets(["a=b"], str(key)), str(key)) == ["a=b"]


@pytest.mark.parametrize(("argv", "message"), [
    (["worker", "--broker", "redis://h:1/0", "--platform", "linux/"], "--platform: invalid"),
    (["worker", "--broker", "redis://h:1/0", "--concurrency", "0"], "at least 1"),
    (["worker"], "no broker"),
    (["submit", "/nonexistent/build.json", "--broker", NO_REDIS], "does not exist"),
    (["farm", "status", "--broker", NO_REDIS, "--log"], "--log needs a BUILD_ID"),
    (["farm", "cancel", "abc"], "no broker"),
])
def test_farm_commands_refuse_bad_input_in_one_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from atomic_reactor.cli.main import main

    monkeypatch.delenv("ATOMIC_REACTOR_BROKER", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("atomic-reactor: error: ") and message in err[0]


def test_farm_status_of_an_unreachable_farm_is_one_line(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    from atomic_reactor.cli.main import main

    for argv in (["farm", "status", "abc"], ["farm", "status"], ["farm", "cancel", "abc"],
                 ["farm", "status", "abc", "--log"]):
        assert main([*argv, "--broker", NO_REDIS]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot reach the farm at redis://127.0.0.1:6399/0" in err[0]
