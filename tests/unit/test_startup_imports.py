"""What a build imports before its first engine call stays small (bench/cli_startup.py)."""

from __future__ import annotations

import subprocess
import sys

from atomic_reactor._image.push import COMPRESSIONS
from atomic_reactor.plugins import tag_and_push


def test_tag_and_push_knows_the_compressions_of_our_push() -> None:
    assert tag_and_push.COMPRESSIONS == COMPRESSIONS


def test_a_buildah_build_imports_no_registry_client_nor_docker() -> None:
    code = ("import sys, atomic_reactor.cli.main, atomic_reactor.inner, "
            "atomic_reactor._engine.buildah, atomic_reactor.plugins.tag_and_push, "
            "atomic_reactor.plugins.pull_base_image\n"
            "heavy = ('docker', 'requests', 'jsonschema', 'importlib.metadata', 'tarfile', "
            "'atomic_reactor._image.push', 'atomic_reactor._multiplatform')\n"
            "print([name for name in heavy if name in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"
