"""Root conftest: makes ``tests.support`` importable whatever pytest's import mode.

With the default ``prepend`` import mode, pytest already puts the repository
root on ``sys.path`` because ``tests`` is a package; ``--import-mode=importlib``
does not, so do it explicitly (idempotent).
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)
