"""Secrets are masked wherever the tool prints or writes text (atomic_reactor._secrets).

The register is process-wide, so every test uses fresh random values.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
from pathlib import Path

import pytest

from atomic_reactor._engine.base import RegistryAuth
from atomic_reactor._files import write_text_atomic
from atomic_reactor._registry.auth import register_config_secrets, resolve_auth
from atomic_reactor._request import apply_substitutions
from atomic_reactor._results import BuildResults
from atomic_reactor._secrets import (
    MASK,
    SecretFilter,
    private_file,
    redact,
    redact_data,
    register_secret,
    remove_private_file,
    write_private_file,
)
from atomic_reactor.errors import AtomicReactorError, PluginFailed, PushError


def fresh(prefix: str = "pw") -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def test_registered_value_is_masked_everywhere_in_a_text() -> None:
    value = fresh()
    assert redact(f"a {value} b {value}") == f"a {value} b {value}"  # not yet registered
    assert register_secret(value)
    assert redact(f"a {value} b {value}") == f"a {MASK} b {MASK}"


def test_json_and_url_escaped_forms_are_masked_too() -> None:
    value = f'p"a\\s/s w{secrets.token_hex(4)}'
    register_secret(value)
    assert value not in redact(value)
    assert json.dumps(value)[1:-1] not in redact(json.dumps({"k": value}))
    from urllib.parse import quote

    assert quote(value, safe="") not in redact(f"https://u:{quote(value, safe='')}@host/")


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    short = fresh("s")
    longer = short + "-and-more"
    register_secret(short)
    register_secret(longer)
    assert redact(f"x {longer} y") == f"x {MASK} y"


def test_too_short_values_are_refused_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="atomic_reactor._secrets"):
        assert not register_secret("abc")
    assert "cannot be masked" in caplog.text
    assert redact("abc abc") == "abc abc"
    assert not register_secret("")
    assert not register_secret(None)


def test_redact_data_walks_nested_values_and_keys() -> None:
    value = fresh()
    register_secret(value)
    data = {"a": [value, {"b": f"x{value}x", value: 1}], "n": 3, "t": (value,), "none": None}
    assert redact_data(data) == {"a": [MASK, {"b": f"x{MASK}x", MASK: 1}], "n": 3,
                                 "t": (MASK,), "none": None}


def test_log_filter_masks_message_arguments_and_traceback() -> None:
    value = fresh()
    register_secret(value)
    try:
        raise ValueError(f"failed with {value}")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s here", (value,),
                               exc_info)
    assert SecretFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert value not in formatted
    assert f"token {MASK} here" in formatted
    assert f"failed with {MASK}" in formatted


def test_errors_never_carry_a_registered_secret() -> None:
    value = fresh()
    register_secret(value)
    assert value not in str(AtomicReactorError(f"login with {value} failed"))
    push = PushError(f"push {value}", registry="r")
    assert value not in push.message
    failed = PluginFailed(f"plugin: {value}", plugin="p", cause=push)
    assert value not in json.dumps(failed.to_dict())


def test_registry_auth_registers_its_password_and_token() -> None:
    password = fresh()
    auth = RegistryAuth(username="user", password=password, registry="r:5000")
    token = base64.b64encode(f"user:{password}".encode()).decode()
    assert password not in redact(f"{password} {token}")
    assert password not in repr(auth)


def test_resolving_a_docker_config_registers_the_password(tmp_path: Path) -> None:
    password = fresh()
    token = base64.b64encode(f"me:{password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"reg:1": {"auth": token}}}))
    auth = resolve_auth("reg:1", str(tmp_path))
    assert auth is not None and auth.password == password
    assert redact(password) == MASK
    assert redact(token) == MASK


def test_register_config_secrets_reads_every_entry(tmp_path: Path) -> None:
    first, second, identity = fresh(), fresh(), fresh("id")
    token = base64.b64encode(f"me:{first}".encode()).decode()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "a:1": {"auth": token},
        "b:2": {"username": "u", "password": second},
        "c:3": {"identitytoken": identity},
        "d:4": "not an object",
    }}))
    assert register_config_secrets(config) == 3
    for value in (first, second, identity, token):
        assert redact(value) == MASK


def test_register_config_secrets_ignores_missing_and_broken_files(tmp_path: Path) -> None:
    assert register_config_secrets(tmp_path / "missing.json") == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert register_config_secrets(broken) == 0


def test_results_to_dict_masks_secrets_everywhere() -> None:
    value = fresh()
    register_secret(value)
    results = BuildResults(build_logs=(f"echo {value}\n",), plugins_errors={"p": value},
                           plugin_results={"exit": {"p": {"token": value}}},
                           error={"type": "BuildFailed", "message": value})
    text = results.to_json()
    assert value not in text
    assert MASK in text
    assert results.build_logs == (f"echo {value}\n",)  # the object itself is untouched


def test_files_written_by_the_tool_are_masked(tmp_path: Path) -> None:
    value = fresh()
    register_secret(value)
    target = tmp_path / "meta.json"
    write_text_atomic(str(target), json.dumps({"v": value}))
    assert value not in target.read_text()


def test_private_file_is_0600_whatever_the_umask_and_not_masked(tmp_path: Path) -> None:
    value = fresh()
    register_secret(value)
    target = tmp_path / "build.json"
    target.write_text("old, world-readable")
    target.chmod(0o644)
    old = os.umask(0)
    try:
        write_private_file(target, json.dumps({"password": value}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert value in target.read_text()  # the file exists to hold it
    remove_private_file(target)
    assert not target.exists()
    remove_private_file(target)  # twice is fine


def test_private_file_refuses_to_follow_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    write_private_file(link, "secret")  # replaces the link itself
    assert elsewhere.read_text() == "keep"
    assert not link.is_symlink()
    assert link.read_text() == "secret"


def test_private_file_context_removes_the_file_even_on_error(tmp_path: Path) -> None:
    target = tmp_path / "cfg.json"
    with pytest.raises(KeyError), private_file(target, "x") as path:
        assert Path(path).is_file()
        raise KeyError("boom")
    assert not target.exists()


def test_secret_substitutions_are_strings_not_json() -> None:
    data = apply_substitutions({"buildargs": {}}, ["buildargs.PIN=1234"], parse=False)
    assert data["buildargs"]["PIN"] == "1234"
    data = apply_substitutions({"buildargs": {}}, ["buildargs.PIN=1234"])
    assert data["buildargs"]["PIN"] == 1234


def test_registered_secrets_can_be_handed_on() -> None:
    from atomic_reactor._secrets import registered_secrets

    value = fresh()
    register_secret(value)
    assert value in registered_secrets()
