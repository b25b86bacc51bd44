"""Running a Python file as a module (plugin files, image test files)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["NotAModule", "exec_file"]


class NotAModule(ImportError):
    """The file cannot be loaded as Python at all."""


def exec_file(file: str | Path, module_name: str) -> ModuleType:
    """Execute ``file`` as module ``module_name`` (registered in ``sys.modules``).

    Raises :class:`NotAModule` when the file is not loadable Python; whatever the file
    raises while it runs propagates, and the half-made module is unregistered.
    """
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise NotAModule(f"{file} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
