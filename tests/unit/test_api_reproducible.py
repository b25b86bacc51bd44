"""``atomic_reactor.api.check_reproducible``: its signature, defaults and bad input (no engine)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from atomic_reactor import api, core
from atomic_reactor._image.compare import DEFAULT_LIMIT, ImageComparison
from atomic_reactor._reproducible import DEFAULT_DELAY, ReproducibilityCheck
from atomic_reactor.errors import InputError

NO_ENGINE = "unix:///nonexistent.sock"


@pytest.fixture
def path_source(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n", encoding="utf-8")
    return {"provider": "path", "uri": f"file://{tmp_path}"}


def test_exported_with_its_result_types() -> None:
    assert "check_reproducible" in api.__all__
    assert api.ReproducibilityCheck is ReproducibilityCheck
    assert api.ImageComparison is ImageComparison
    assert {"ReproducibilityCheck", "ImageComparison"} <= set(api.__all__)
    for cls in (ReproducibilityCheck, ImageComparison):
        assert dataclasses.is_dataclass(cls)
        assert vars(cls)["__dataclass_params__"].frozen
    with pytest.raises(AttributeError):
        api.NoSuchName  # noqa: B018


def test_signature_in_the_style_of_build_image_here() -> None:
    signature = inspect.signature(api.check_reproducible)
    positional = [(p.name, p.default) for p in signature.parameters.values()
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    empty = inspect.Parameter.empty
    assert positional == [("source", empty), ("image", empty), ("parent_registry", None),
                          ("parent_registry_insecure", False),
                          ("dont_pull_base_image", False)]
    keyword = {p.name: p.default for p in signature.parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY}
    # the documented defaults are the check's own
    assert keyword == {"delay": DEFAULT_DELAY, "limit": DEFAULT_LIMIT}
    assert signature.return_annotation in ("ReproducibilityCheck", ReproducibilityCheck)
    assert api.check_reproducible.__doc__ and "NotReproducible" in api.check_reproducible.__doc__


def test_bad_input_is_refused_before_building(path_source: dict[str, str]) -> None:
    tasker = core.DockerTasker(base_url=NO_ENGINE)
    with pytest.raises(InputError, match="invalid image name"):
        api.check_reproducible(path_source, "Bad:Image", tasker=tasker)
    with pytest.raises(InputError, match="unknown key 'bogus'"):
        api.check_reproducible(path_source, "app:1", bogus=1, tasker=tasker)
    with pytest.raises(InputError, match="delay must be 0 or more"):
        api.check_reproducible(path_source, "app:1", delay=-1, tasker=tasker)
