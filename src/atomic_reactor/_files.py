"""Writing files the tool produces."""

from __future__ import annotations

import os
import tempfile

from atomic_reactor._secrets import redact

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, rename).

    Registered secrets are masked (see :mod:`atomic_reactor._secrets`); a file that
    must hold a credential is written with ``_secrets.write_private_file`` instead.
    """
    text = redact(text)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".atomic-reactor-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
