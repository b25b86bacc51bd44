"""What travels through the broker with a build: the request, a packed path source,
encrypted secrets.

A ``path`` source is a directory on the submitter's machine, which workers cannot
see: it is packed (tar.gz) into the message, up to :data:`MAX_SOURCE_BYTES` packed;
a larger one is refused before anything is queued. ``git`` sources travel as they
are (the worker clones them).

Secrets (``--substitute-secret``) travel only encrypted with the farm's shared key
(a Fernet key in the file named by ``ATOMIC_REACTOR_FARM_KEY_FILE``, on the
submitters and the workers); without a key such a submit is refused. Registry
credentials never travel: workers use their own docker config.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from atomic_reactor.errors import InputError

__all__ = ["MAX_SOURCE_BYTES", "decrypt_secrets", "encrypt_secrets", "generate_key",
           "pack_path_source", "unpack_source"]

#: the largest packed (tar.gz) path source a request may carry
MAX_SOURCE_BYTES = 50 * 1024 * 1024
PAYLOAD_VERSION = 1


class _Limited(io.RawIOBase):
    """A byte sink that refuses to grow past a limit."""

    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if len(self.buffer) + len(chunk) > self.limit:
            raise _TooLarge
        self.buffer += chunk
        return len(chunk)


class _TooLarge(Exception):
    pass


def source_directory(source: Mapping[str, Any]) -> str:
    """The local directory of a ``path`` source (``uri`` file:///dir or a plain path)."""
    uri = str(source.get("uri") or "")
    if not uri:
        raise InputError("path source: 'uri' is missing")
    if uri.startswith("file://"):
        path = unquote(urlsplit(uri).path)
    elif "://" in uri:
        raise InputError(f"path source: {uri!r} is not a local directory")
    else:
        path = uri
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise InputError(f"path source {path} is not a directory")
    return path


def pack_path_source(directory: str, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """``directory`` as tar.gz bytes; :class:`InputError` in one line when over ``limit``."""
    sink = _Limited(limit)
    try:
        with tarfile.open(fileobj=sink, mode="w:gz", compresslevel=6) as tar:
            tar.add(directory, arcname=".", filter=_no_owner)
    except _TooLarge:
        raise InputError(f"path source {directory} is larger than the farm's limit of "
                         f"{limit // (1024 * 1024)} MiB packed; use a git source or a smaller "
                         "directory") from None
    except OSError as exc:
        raise InputError(f"cannot pack path source {directory}: "
                         f"{exc.strerror or exc}") from None
    return bytes(sink.buffer)


def _no_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def unpack_source(archive: bytes, dest: str) -> None:
    """Unpack a packed path source into ``dest`` (safely: nothing lands outside it)."""
    from atomic_reactor._image.tarstream import safe_extract

    safe_extract(io.BytesIO(archive), dest)


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_bytes(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


# -- secrets -----------------------------------------------------------------------------


def generate_key() -> str:
    """A new shared key for ``ATOMIC_REACTOR_FARM_KEY_FILE``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def _fernet(key_file: str) -> Any:
    from cryptography.fernet import Fernet

    try:
        with open(key_file, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise InputError(f"cannot read the farm key file {key_file}: "
                         f"{exc.strerror or exc}") from None
    try:
        return Fernet(key)
    except ValueError:
        raise InputError(f"the farm key file {key_file} does not hold a key (make one with "
                         "`atomic-reactor farm keygen`)") from None


def encrypt_secrets(items: Sequence[str], key_file: str | None) -> str:
    """``KEY=VALUE`` secret substitutions encrypted with the farm's key."""
    if key_file is None:
        raise InputError("--substitute-secret is refused: this farm does not encrypt its "
                         "messages, so the secret would cross the broker in clear; give all "
                         "submitters and workers a shared key (ATOMIC_REACTOR_FARM_KEY_FILE, "
                         "see docs/farm.md)")
    token: bytes = _fernet(key_file).encrypt(json.dumps(list(items)).encode())
    return token.decode("ascii")


def decrypt_secrets(token: str, key_file: str | None) -> list[str]:
    from cryptography.fernet import InvalidToken

    if key_file is None:
        raise InputError("the build carries encrypted secrets but this worker has no farm key "
                         "(ATOMIC_REACTOR_FARM_KEY_FILE)")
    try:
        items = json.loads(_fernet(key_file).decrypt(token.encode("ascii")))
    except InvalidToken:
        raise InputError("the build's secrets do not decrypt with this worker's farm key "
                         "(the keys differ)") from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InputError("the build's secrets are malformed")
    return items
