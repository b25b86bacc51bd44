"""``remove_built_image`` without an engine: timestamps and arguments (the rest needs images)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from atomic_reactor._plugin_args import validate_plugin_args
from atomic_reactor.errors import PluginConfigError
from atomic_reactor.plugins.remove_built_image import RemoveBuiltImagePlugin, _timestamp


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-26T21:22:45.38174714Z", datetime(2026, 11, 26, 21, 22, 45, 381747, tzinfo=UTC)),
    ("2026-11-26T21:22:45Z", datetime(2026, 11, 26, 21, 22, 45, tzinfo=UTC)),
    ("2026-11-26T21:22:45.5+00:00", datetime(2026, 11, 26, 21, 22, 45, 500000, tzinfo=UTC)),
])
def test_timestamps(text: str, expected: datetime) -> None:
    assert _timestamp(text) == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-11-26T21:22:45"])
def test_unusable_timestamps(text: object) -> None:
    assert _timestamp(text) is None


def test_arguments() -> None:
    validate_plugin_args("remove_built_image", RemoveBuiltImagePlugin,
                         {"remove_pulled_base_image": False})
    with pytest.raises(PluginConfigError):
        validate_plugin_args("remove_built_image", RemoveBuiltImagePlugin,
                             {"remove_base_image": False})
