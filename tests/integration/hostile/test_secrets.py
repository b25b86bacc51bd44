"""Credentials never show: not in stdout/stderr (even with -v), logs, results,
metadata files or error messages.

The registry password comes from DOCKER_CONFIG (used for a real push to a
registry that requires it) and is also handed to the build as a secret
substitution, together with a second secret: the build and a plugin then do
their best to print both (``RUN echo``, log lines, results, an exception).
Everywhere the tool prints or writes, ``***`` must stand in their place.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from pathlib import Path

from atomic_reactor._registry.client import RegistryClient
from tests.integration.helpers import Outcome, path_source, unique, write_context, write_plugin_file
from tests.support.env import BaseImage, Registry

LEAKY_PLUGINS = '''
import logging

from atomic_reactor._registry.auth import resolve_auth
from atomic_reactor.plugin import ExitPlugin, PostBuildPlugin, PreBuildPlugin


class Leak(PostBuildPlugin):
    """Logs its secret argument every way it can, then fails with it."""

    key = "leak"

    def __init__(self, tasker, workflow, token: str, fail: bool = True):
        super().__init__(tasker, workflow)
        self.token = token
        self.fail = fail

    def run(self):
        self.log.info("the token is %s", self.token)
        self.log.warning("warning: token=" + self.token)
        logging.getLogger("atomic_reactor.whatever").debug("debug %s", self.token)
        if self.fail:
            raise ValueError(f"refused token {self.token}")
        return {"token": self.token}


class LeakEarly(PreBuildPlugin):
    key = "leak_early"

    def __init__(self, tasker, workflow, token: str):
        super().__init__(tasker, workflow)
        self.token = token

    def run(self):
        raise ValueError(f"cannot use {self.token}")


class LeakPassword(ExitPlugin):
    """Reads the registry password the way tag_and_push does and returns it."""

    key = "leak_password"

    def __init__(self, tasker, workflow, registry: str):
        super().__init__(tasker, workflow)
        self.registry = registry

    def run(self):
        auth = resolve_auth(self.registry)
        self.log.warning("password for %s is %s", self.registry, auth.password)
        return {"password": auth.password, "config": auth.as_docker_auth_config()}
'''


def _forbidden(auth_registry: Registry, other: str) -> list[str]:
    assert auth_registry.username is not None and auth_registry.password is not None
    token = base64.b64encode(
        f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    return [auth_registry.password, token, other]


def _assert_nowhere(texts: dict[str, str], forbidden: list[str]) -> None:
    for where, text in texts.items():
        for value in forbidden:
            assert value not in text, f"a secret appears in {where}"


def test_push_with_password_and_secret_substitutions_prints_no_secret(
        cli: Callable[..., Outcome], tmp_path: Path, docker_config: Path,
        registry: Registry, auth_registry: Registry, base_image: BaseImage) -> None:
    other = f"other-secret-{secrets.token_hex(12)}"
    forbidden = _forbidden(auth_registry, other)
    context = write_context(tmp_path / "src", f"""
        FROM {base_image.repo}
        ARG TOKEN
        ARG OTHER
        RUN echo "token is $TOKEN" && echo "other is $OTHER" && echo built > /built
        """)
    plugin_file = write_plugin_file(tmp_path / "leaky.py", LEAKY_PLUGINS)
    name = unique("secret")
    meta_plugin_file = tmp_path / "store_metadata.json"
    logs_plugin_file = tmp_path / "store_logs.json"
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": path_source(context), "image": f"{name}:1",
        "parent_registry": registry.address, "target_registries": [auth_registry.address],
        "buildargs": {"TOKEN": "placeholder", "OTHER": "placeholder"},
        "postbuild_plugins": [{"name": "leak", "args": {"token": "placeholder"},
                               "is_allowed_to_fail": True}],
        "exit_plugins": [
            {"name": "leak_password", "args": {"registry": auth_registry.address}},
            {"name": "store_metadata", "args": {"path": str(meta_plugin_file)}},
            {"name": "store_logs_to_file", "args": {"file_path": str(logs_plugin_file)}},
        ],
        "plugin_files": [str(plugin_file)],
    }))
    metadata = tmp_path / "results.json"
    log_file = tmp_path / "build.log"
    assert auth_registry.password is not None
    out = cli("-v", "build", "json", str(build_json),
              "--substitute-secret", f"buildargs.TOKEN={auth_registry.password}",
              "--substitute-secret-env", "buildargs.OTHER=LEAK_OTHER",
              "--substitute-secret", f"postbuild_plugins.leak.token={other}",
              "--metadata-file", str(metadata), "--log-file", str(log_file),
              env={"LEAK_OTHER": other})
    assert out.code == 0, out.stderr
    # the push needed the password, and worked
    data = json.loads(metadata.read_text())
    digest = data["digests"][auth_registry.address][f"{auth_registry.address}/{name}:1"]
    with RegistryClient(auth_registry.address) as client:
        assert client.get_manifest_digest(name, "1") == digest
    # the secrets were there to leak: masked where they would have been
    assert "token is ***" in out.stderr
    assert "other is ***" in out.stderr
    assert "the token is ***" in out.stderr
    assert f"password for {auth_registry.address} is ***" in out.stderr
    assert data["plugins_errors"]["leak"] == "ValueError: refused token ***"
    assert data["plugin_results"]["exit"]["leak_password"]["password"] == "***"
    _assert_nowhere({
        "stdout": out.stdout, "stderr": out.stderr,
        "--metadata-file": metadata.read_text(),
        "--log-file": log_file.read_text(),
        "store_metadata": meta_plugin_file.read_text(),
        "store_logs_to_file": logs_plugin_file.read_text(),
    }, forbidden)
    assert "token is ***" in log_file.read_text()
    assert out.tmp_leftovers == [] and out.new_containers == []


def test_secret_in_a_failing_plugin_error_is_masked_also_with_traceback(
        cli: Callable[..., Outcome], tmp_path: Path, registry: Registry,
        base_image: BaseImage) -> None:
    secret = f"early-{secrets.token_hex(12)}"
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\n")
    plugin_file = write_plugin_file(tmp_path / "leaky.py", LEAKY_PLUGINS)
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({
        "source": path_source(context), "image": unique("secret-fail"),
        "parent_registry": registry.address,
        "prebuild_plugins": [{"name": "leak_early", "args": {"token": "x"}}],
        "plugin_files": [str(plugin_file)],
    }))
    metadata = tmp_path / "results.json"
    out = cli("-v", "build", "json", str(build_json), "--metadata-file", str(metadata),
              "--substitute-secret", f"prebuild_plugins.leak_early.token={secret}")
    assert out.code == 5, out.stderr
    assert out.last_line() == "atomic-reactor: error: leak_early: ValueError: cannot use ***"
    assert "Traceback" in out.stderr  # -v shows it: masked too
    _assert_nowhere({"stdout": out.stdout, "stderr": out.stderr,
                     "--metadata-file": metadata.read_text()}, [secret])
    assert out.tmp_leftovers == [] and out.new_containers == [] and out.new_images == []


def test_malformed_secret_substitution_does_not_echo_it(cli: Callable[..., Outcome],
                                                        tmp_path: Path) -> None:
    secret = f"forgot-the-key-{secrets.token_hex(8)}"
    build_json = tmp_path / "build.json"
    build_json.write_text(json.dumps({"source": path_source(tmp_path), "image": "x:1"}))
    out = cli("build", "json", str(build_json), "--substitute-secret", secret)
    assert out.code == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "atomic-reactor: error: --substitute-secret takes KEY=VALUE (a dotted key, '=', "
        "the secret value)"]
    assert secret not in out.stderr + out.stdout
    missing = cli("build", "json", str(build_json),
                  "--substitute-secret-env", "buildargs.X=NO_SUCH_VARIABLE_SET")
    assert missing.code == 2
    assert "NO_SUCH_VARIABLE_SET is not set" in missing.last_line()
    assert out.tmp_leftovers == [] and missing.tmp_leftovers == []


def test_wrong_password_from_docker_config_is_not_printed(
        cli: Callable[..., Outcome], tmp_path: Path, registry: Registry,
        auth_registry: Registry, base_image: BaseImage) -> None:
    """The push is refused: the error names the registry, never the password."""
    wrong = f"wrong-{secrets.token_hex(12)}"
    config = tmp_path / "dockercfg"
    config.mkdir()
    token = base64.b64encode(f"tester:{wrong}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.address:
                                                              {"auth": token}}}))
    context = write_context(tmp_path / "src", f"FROM {base_image.repo}\n")
    metadata = tmp_path / "results.json"
    out = cli("-v", "build", "path", "--uri", str(context), "--image", unique("wrongpw"),
              "--source-registry", registry.address,
              "--target-registries", auth_registry.address, "--metadata-file", str(metadata),
              env={"DOCKER_CONFIG": str(config)})
    assert out.code == 4, out.stderr
    assert auth_registry.address in out.last_line()
    _assert_nowhere({"stdout": out.stdout, "stderr": out.stderr,
                     "--metadata-file": metadata.read_text()}, [wrong, token])
