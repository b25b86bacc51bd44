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

__all__ = ["default_docker_config", "load_auth_file", "register_config_secrets", "resolve_auth"]

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
