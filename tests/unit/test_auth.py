"""Unit tests of registry credentials (_auth.resolve_auth) from config files and secrets."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor._engine.base import RegistryAuth
from atomic_reactor._registry.auth import default_docker_config, load_auth_file, resolve_auth
from atomic_reactor.errors import AuthenticationError, RegistryError

PASSWORD = "pa55-w0rd-do-not-leak"
REGISTRY = "registry.example.com:5000"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and no DOCKER_CONFIG: no credentials unless a test writes some."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return home


# -- where the config is found ----------------------------------------------------------------


def test_default_docker_config(home: Path, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    assert default_docker_config() == home / ".docker" / "config.json"
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    assert default_docker_config() == tmp_path / "dc" / "config.json"


def test_no_credentials_anywhere(home: Path) -> None:
    assert resolve_auth(REGISTRY) is None


def test_no_registry_means_no_credentials(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"auths": {REGISTRY: {"auth": b64(f"u:{PASSWORD}")}}})
    assert resolve_auth(None) is None
    assert resolve_auth("") is None


def test_home_docker_config(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"auths": {REGISTRY: {"auth": b64(f"alice:{PASSWORD}")}}})
    auth = resolve_auth(REGISTRY)
    assert auth == RegistryAuth(username="alice", password=PASSWORD, registry=REGISTRY)
    assert resolve_auth("other.example.com") is None


def test_docker_config_env_wins_over_home(home: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    write_json(home / ".docker" / "config.json",
               {"auths": {REGISTRY: {"auth": b64("home:pw")}}})
    config_dir = tmp_path / "docker-config"
    write_json(config_dir / "config.json",
               {"auths": {REGISTRY: {"username": "env", "password": "envpw"}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    auth = resolve_auth(REGISTRY)
    assert auth is not None
    assert (auth.username, auth.password) == ("env", "envpw")


def test_docker_config_env_without_file(home: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    assert resolve_auth(REGISTRY) is None


def test_entry_without_credentials(home: Path) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {REGISTRY: {}}})
    assert resolve_auth(REGISTRY) is None


# -- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    REGISTRY,
    f"https://{REGISTRY}",
    f"https://{REGISTRY}/",
    f"https://{REGISTRY}/v1/",
    f"https://{REGISTRY}/v2/",
    f"http://{REGISTRY}",
])
def test_url_keys_match_host_port(home: Path, key: str) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {key: {"auth": b64("u:p")}}})
    auth = resolve_auth(REGISTRY)
    assert auth is not None
    assert auth.username == "u"
    assert auth.registry == REGISTRY


def test_url_registry_argument_matches_plain_key(home: Path) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {REGISTRY: {"auth": b64("u:p")}}})
    assert resolve_auth(f"https://{REGISTRY}/v2/") is not None


def test_port_must_match(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"auths": {"registry.example.com:5001": {"auth": b64("u:p")}}})
    assert resolve_auth(REGISTRY) is None


def test_base64_password_may_contain_colons(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"auths": {REGISTRY: {"auth": b64("u:a:b:c")}}})
    auth = resolve_auth(REGISTRY)
    assert auth is not None
    assert (auth.username, auth.password) == ("u", "a:b:c")


def test_username_password_fields(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"auths": {REGISTRY: {"username": "bob", "password": PASSWORD,
                                     "auth": b64("ignored:ignored")}}})
    auth = resolve_auth(REGISTRY)
    assert auth is not None
    assert (auth.username, auth.password) == ("bob", PASSWORD)


def test_legacy_dockercfg_format(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    write_json(secret / ".dockercfg",
               {f"https://{REGISTRY}": {"auth": b64(f"legacy:{PASSWORD}"),
                                        "email": "x@example.com"}})
    auth = resolve_auth(REGISTRY, secret)
    assert auth is not None
    assert (auth.username, auth.password) == ("legacy", PASSWORD)


def test_load_auth_file_wraps_legacy_format(tmp_path: Path) -> None:
    path = write_json(tmp_path / "cfg", {REGISTRY: {"auth": "x"}})
    assert load_auth_file(path) == {"auths": {REGISTRY: {"auth": "x"}}}
    modern = write_json(tmp_path / "modern", {"auths": {}, "HttpHeaders": {}})
    assert load_auth_file(modern) == {"auths": {}, "HttpHeaders": {}}


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [".dockerconfigjson", "config.json", ".dockercfg"])
def test_secret_directory_files(tmp_path: Path, home: Path, name: str) -> None:
    secret = tmp_path / "secret"
    data: dict[str, Any] = {REGISTRY: {"auth": b64(f"s:{PASSWORD}")}}
    if name != ".dockercfg":
        data = {"auths": data}
    write_json(secret / name, data)
    auth = resolve_auth(REGISTRY, secret)
    assert auth == RegistryAuth(username="s", password=PASSWORD, registry=REGISTRY)
    assert resolve_auth(REGISTRY, str(secret)) == auth


def test_secret_file_precedence(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    write_json(secret / ".dockercfg", {REGISTRY: {"auth": b64("third:pw")}})
    write_json(secret / "config.json", {"auths": {REGISTRY: {"auth": b64("second:pw")}}})
    write_json(secret / ".dockerconfigjson", {"auths": {REGISTRY: {"auth": b64("first:pw")}}})
    auth = resolve_auth(REGISTRY, secret)
    assert auth is not None
    assert auth.username == "first"


def test_secret_path_may_be_the_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "creds.json", {"auths": {REGISTRY: {"auth": b64("f:pw")}}})
    auth = resolve_auth(REGISTRY, path)
    assert auth is not None
    assert auth.username == "f"


def test_secret_wins_over_docker_config(tmp_path: Path, home: Path) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {REGISTRY: {"auth": b64("h:pw")}}})
    secret = tmp_path / "secret"
    write_json(secret / "config.json", {"auths": {REGISTRY: {"auth": b64("s:pw")}}})
    auth = resolve_auth(REGISTRY, secret)
    assert auth is not None
    assert auth.username == "s"


def test_secret_without_creds_for_registry(tmp_path: Path, home: Path) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {REGISTRY: {"auth": b64("h:pw")}}})
    secret = tmp_path / "secret"
    write_json(secret / "config.json",
               {"auths": {"other.example.com": {"auth": b64(f"o:{PASSWORD}")}}})
    with pytest.raises(AuthenticationError) as info:
        resolve_auth(REGISTRY, secret)
    message = str(info.value)
    assert "has no credentials for" in message
    assert REGISTRY in message
    assert PASSWORD not in message
    assert info.value.exit_code == 4
    assert isinstance(info.value, RegistryError)


def test_secret_directory_without_known_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "token").write_text("x", encoding="utf-8")
    with pytest.raises(AuthenticationError, match="holds none of"):
        resolve_auth(REGISTRY, secret)


def test_secret_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(AuthenticationError, match="does not exist"):
        resolve_auth(REGISTRY, tmp_path / "missing")


# -- malformed credentials never leak the password ----------------------------------------------


def test_invalid_json_message_has_no_password(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "config.json").write_text(
        '{"auths": {"' + REGISTRY + '": {"username": "u", "password": "' + PASSWORD + '",}}}',
        encoding="utf-8")
    with pytest.raises(AuthenticationError) as info:
        resolve_auth(REGISTRY, secret)
    message = str(info.value)
    assert "not valid JSON" in message
    assert "line 1" in message
    assert PASSWORD not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True


def test_invalid_json_in_docker_config(home: Path) -> None:
    path = home / ".docker" / "config.json"
    path.parent.mkdir()
    path.write_text(f"auths: {PASSWORD}", encoding="utf-8")
    with pytest.raises(AuthenticationError) as info:
        resolve_auth(REGISTRY)
    assert PASSWORD not in str(info.value)


def test_config_that_is_not_an_object(home: Path) -> None:
    write_json(home / ".docker" / "config.json", [PASSWORD])
    with pytest.raises(AuthenticationError, match="not a JSON object") as info:
        resolve_auth(REGISTRY)
    assert PASSWORD not in str(info.value)


def test_config_not_utf8(home: Path) -> None:
    path = home / ".docker" / "config.json"
    path.parent.mkdir()
    path.write_bytes(b'{"auths": {"\xff": {}}}')
    with pytest.raises(AuthenticationError, match="cannot read"):
        resolve_auth(REGISTRY)


@pytest.mark.parametrize("encoded", [
    b64(PASSWORD),  # no colon
    base64.b64encode(b"\xff\xfe:" + PASSWORD.encode()).decode(),  # not UTF-8
    "!!!!",
])
def test_auth_not_user_colon_password(home: Path, encoded: str) -> None:
    write_json(home / ".docker" / "config.json", {"auths": {REGISTRY: {"auth": encoded}}})
    with pytest.raises(AuthenticationError) as info:
        resolve_auth(REGISTRY)
    assert REGISTRY in str(info.value)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("auths", [[REGISTRY], "text", 5])
def test_auths_not_an_object(home: Path, auths: Any) -> None:
    write_json(home / ".docker" / "config.json", {"auths": auths})
    with pytest.raises(AuthenticationError):
        resolve_auth(REGISTRY)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_missing_credential_helper(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"credsStore": "atomic-reactor-test-no-such-helper"})
    with pytest.raises(AuthenticationError, match="credential helper") as info:
        resolve_auth(REGISTRY)
    assert REGISTRY in str(info.value)


def test_auths_entry_wins_over_credential_helper(home: Path) -> None:
    write_json(home / ".docker" / "config.json",
               {"credsStore": "atomic-reactor-test-no-such-helper",
                "auths": {REGISTRY: {"auth": b64("u:p")}}})
    auth = resolve_auth(REGISTRY)
    assert auth is not None
    assert auth.username == "u"


# -- RegistryAuth --------------------------------------------------------------------------------


def test_registry_auth_repr_hides_password() -> None:
    auth = RegistryAuth(username="alice", password=PASSWORD, registry=REGISTRY)
    assert PASSWORD not in repr(auth)
    assert PASSWORD not in str(auth)
    assert "alice" in repr(auth)
    assert auth.as_docker_auth_config() == {"username": "alice", "password": PASSWORD,
                                            "serveraddress": REGISTRY}


# -- what the docker backend sends with a build ------------------------------------------------

def test_registry_config_has_every_registry_of_the_config(home: Path) -> None:
    from atomic_reactor._registry.auth import registry_config

    assert registry_config() == {}
    write_json(home / ".docker" / "config.json", {"auths": {
        REGISTRY: {"auth": b64(f"user:{PASSWORD}")},
        "https://other.example/v1/": {"username": "u2", "password": "p2"},
        "tokens.example": {"identitytoken": "tok"},
        "empty.example": {},
        "docker.io": {"auth": b64("hub:pw")},
    }, "proxies": {"default": {"httpProxy": "http://proxy:3128"}}})
    assert registry_config() == {
        REGISTRY: {"username": "user", "password": PASSWORD, "serveraddress": REGISTRY},
        "https://other.example/v1/": {"username": "u2", "password": "p2",
                                      "serveraddress": "https://other.example/v1/"},
        "tokens.example": {"identitytoken": "tok", "serveraddress": "tokens.example"},
        "docker.io": {"username": "hub", "password": "pw", "serveraddress": "docker.io"},
        "https://index.docker.io/v1/": {"username": "hub", "password": "pw",
                                        "serveraddress": "docker.io"},
    }
    (home / ".docker" / "config.json").write_text("{not json")
    assert registry_config() == {}  # the build goes on; a pull that needs them says so


def test_proxy_environment_of_the_config(home: Path) -> None:
    from atomic_reactor._registry.auth import proxy_environment

    assert proxy_environment() == {}
    write_json(home / ".docker" / "config.json", {"proxies": {
        "default": {"httpProxy": "http://p:3128", "noProxy": "localhost"},
        "tcp://other:2375": {"httpsProxy": "http://q:3128"},
    }})
    assert proxy_environment("unix:///var/run/docker.sock") == {
        "http_proxy": "http://p:3128", "HTTP_PROXY": "http://p:3128",
        "no_proxy": "localhost", "NO_PROXY": "localhost"}
    assert proxy_environment("tcp://other:2375") == {
        "https_proxy": "http://q:3128", "HTTPS_PROXY": "http://q:3128"}
