"""docs/plugins.md is generated from the plugins; it must match them."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.helpers import REPO_ROOT


def test_plugin_docs_are_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gen-plugin-docs.py"),
                           "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_every_builtin_plugin_is_documented_with_its_arguments() -> None:
    text = (REPO_ROOT / "docs" / "plugins.md").read_text()
    assert "failed to load" not in text
    for key in ("pull_base_image", "tag_and_push", "squash", "sendmail", "store_metadata"):
        assert f"### `{key}`" in text
    assert "| `registries` |" in text
