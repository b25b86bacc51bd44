"""Registry credentials, found where docker itself would find them.

Order: an explicit secret path (a directory holding ``.dockerconfigjson``,
``config.json`` or ``.dockercfg``, or such a file itself), then
``$DOCKER_CONFIG/config.json``, then ``~/.docker/config.json``. Credential helpers
(``credsStore``/``credHelpers``) are honoured through the Docker SDK's resolver.
Passwords never appear in messages or reprs.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from atomic_reactor._engine.base import RegistryAuth
from atomic_reactor._secrets import register_auth_token, register_secret
from atomic_reactor.errors import AuthenticationError

logger = logging.getLogger(__name__)

__all__ = ["default_docker_config", "load_auth_file", "proxy_environment",
           "register_config_secrets", "registry_config", "resolve_auth"]

_SECRET_FILES = (".dockerconfigjson", "config.json", ".dockercfg")


def default_docker_config() -> Path:
    """The config file docker would read."""
    base = os.environ.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    return Path.home() / ".docker" / "config.json"


def _secret_file(secret_path: str | os.PathLike[str]) -> Path:
    path = Path(secret_path)
    if path.is_dir():
        for name in _SECRET_FILES:
            if (path / name).is_file():
                return path / name
        raise AuthenticationError(
            f"registry secret {path} holds none of {', '.join(_SECRET_FILES)}")
    if path.is_file():
        return path
    raise AuthenticationError(f"registry secret {path} does not exist")


def load_auth_file(path: Path) -> dict[str, Any]:
    """Read a docker config (``{"auths": …}``) or legacy ``.dockercfg`` document."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthenticationError(f"cannot read registry credentials {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AuthenticationError(
            f"registry credentials {path} are not valid JSON (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise AuthenticationError(f"registry credentials {path} are not a JSON object")
    if "auths" not in data and "credsStore" not in data and "credHelpers" not in data:
        data = {"auths": data}  # legacy .dockercfg: registry -> entry
    for key in ("auths", "credHelpers"):
        if key in data and not isinstance(data[key], dict):
            raise AuthenticationError(f"registry credentials {path}: {key!r} is not an object")
    return data


def _normalise(registry: str) -> str:
    for prefix in ("https://", "http://"):
        if registry.startswith(prefix):
            registry = registry[len(prefix):]
    return registry.rstrip("/").removesuffix("/v1").removesuffix("/v2").rstrip("/")


def _entry_auth(entry: dict[str, Any], registry: str, source: Path) -> RegistryAuth | None:
    username = entry.get("username")
    password = entry.get("password")
    encoded = entry.get("auth")
    if encoded and not (username and password):
        try:
            decoded = base64.b64decode(str(encoded), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError(
                f"the credentials for {registry} in {source} are not valid base64") from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthenticationError(
                f"the credentials for {registry} in {source} are not of the form user:password")
    if username and password is not None:
        return RegistryAuth(username=str(username), password=str(password), registry=registry)
    return None


def _from_config(config: dict[str, Any], registry: str, source: Path) -> RegistryAuth | None:
    wanted = _normalise(registry)
    for key, entry in (config.get("auths") or {}).items():
        if _normalise(key) == wanted and isinstance(entry, dict):
            found = _entry_auth(entry, registry, source)
            if found is not None:
                return found
    if config.get("credsStore") or config.get("credHelpers"):
        from docker import auth as docker_auth  # credential helpers

        try:
            resolved = docker_auth.resolve_authconfig(docker_auth.AuthConfig(config), registry)
        except Exception as exc:  # a helper failing is an auth problem, not a crash
            raise AuthenticationError(
                f"credential helper for {registry} failed: {type(exc).__name__}") from None
        if resolved and resolved.get("Username") is not None:
            return RegistryAuth(username=str(resolved["Username"]),
                                password=str(resolved.get("Password", "")), registry=registry)
    return None


def resolve_auth(registry: str | None, secret_path: str | os.PathLike[str] | None = None
                 ) -> RegistryAuth | None:
    """Credentials for ``registry`` (``host[:port]``), or None when there are none."""
    if not registry:
        return None
    if secret_path:
        source = _secret_file(secret_path)
        found = _from_config(load_auth_file(source), registry, source)
        if found is None:
            raise AuthenticationError(f"registry secret {source} has no credentials for {registry}")
        return found
    config_file = default_docker_config()
    if not config_file.is_file():
        return None
    return _from_config(load_auth_file(config_file), registry, config_file)


def _default_config() -> tuple[Path, dict[str, Any]]:
    """The docker config file and what it holds (nothing when it is missing or
    unreadable: what needs it reports the problem)."""
    file = default_docker_config()
    try:
        return file, load_auth_file(file) if file.is_file() else {}
    except AuthenticationError:
        return file, {}


def registry_config() -> dict[str, dict[str, str]]:
    """Every registry's credentials in the docker config, as dockerd's
    ``X-Registry-Config`` takes them with a build (``{registry: {"username": ...,
    "password": ..., "serveraddress": registry}}``): what the Docker SDK sent, for the
    base images of any registry the build pulls. Credential helpers are asked through
    the SDK's resolver."""
    file, config = _default_config()
    found: dict[str, dict[str, str]] = {}
    for key, entry in (config.get("auths") or {}).items():
        if not isinstance(entry, dict):
            continue
        try:
            auth = _entry_auth(entry, key, file)
        except AuthenticationError:
            continue
        if auth is not None:
            found[key] = {"username": auth.username, "password": auth.password,
                          "serveraddress": key}
        elif isinstance(entry.get("identitytoken"), str):
            found[key] = {"identitytoken": entry["identitytoken"], "serveraddress": key}
    if config.get("credsStore") or config.get("credHelpers"):
        from docker import auth as docker_auth  # credential helpers

        try:
            helped = docker_auth.AuthConfig(config).get_all_credentials()
        except Exception as exc:  # a helper failing: the build reports what it lacks
            logger.debug("credential helper failed: %s", type(exc).__name__)
        else:
            for key, value in helped.items():
                if isinstance(value, dict) and value.get("Username") is not None:
                    found[key] = {"username": str(value["Username"]),
                                  "password": str(value.get("Password", "")),
                                  "serveraddress": str(value.get("ServerAddress") or key)}
    if "docker.io" in found and "https://index.docker.io/v1/" not in found:
        found["https://index.docker.io/v1/"] = found["docker.io"]
    return found


_PROXY_KEYS = (("httpProxy", "http_proxy"), ("httpsProxy", "https_proxy"),
               ("ftpProxy", "ftp_proxy"), ("noProxy", "no_proxy"))


def proxy_environment(engine_address: str | None = None) -> dict[str, str]:
    """The proxy variables the docker config's ``proxies`` give containers and builds
    (its entry for ``engine_address``, else ``default``), upper and lower case."""
    try:
        config = json.loads(default_docker_config().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    proxies = config.get("proxies") if isinstance(config, dict) else None
    if not isinstance(proxies, dict):
        return {}
    chosen = proxies.get(engine_address or "", proxies.get("default"))
    if not isinstance(chosen, dict):
        return {}
    environment: dict[str, str] = {}
    for key, variable in _PROXY_KEYS:
        value = chosen.get(key)
        if value:
            environment[variable] = environment[variable.upper()] = str(value)
    return environment


def register_config_secrets(path: str | os.PathLike[str] | None = None) -> int:
    """Register every password (and ``auth`` token) of a docker config as a secret.

    The command line does this before a build starts, so a credential is masked in
    all output even before the push that uses it. A missing or malformed file
    registers nothing (the push that needs it reports the problem). Returns how
    many entries were registered.
    """

    file = Path(path) if path else default_docker_config()
    try:
        config = load_auth_file(file) if file.is_file() else {}
    except AuthenticationError:
        return 0
    count = 0
    for entry in (config.get("auths") or {}).values():
        if not isinstance(entry, dict):
            continue
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            register_secret(encoded)
            try:
                decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            username, sep, password = decoded.partition(":")
            if sep:
                register_auth_token(username, password)
        plain = entry.get("password")
        if isinstance(plain, str) and plain:
            register_auth_token(str(entry.get("username") or ""), plain)
        for key in ("identitytoken", "registrytoken"):
            token = entry.get(key)
            if isinstance(token, str) and token:
                register_secret(token)
        count += 1
    return count
