"""Unit tests of the exception tree: exit codes, categories, causes."""

from __future__ import annotations

import signal

import pytest

from atomic_reactor import errors
from atomic_reactor.errors import (
    AtomicReactorError,
    AuthenticationError,
    BuildCancelled,
    BuildFailed,
    BuildJsonError,
    DockerfileError,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    InputError,
    InvalidImageName,
    PluginConfigError,
    PluginFailed,
    PullError,
    PushError,
    RegistryError,
    SourceError,
)


@pytest.mark.parametrize(
    ("cls", "parent", "exit_code", "category"),
    [
        (AtomicReactorError, Exception, 1, "error"),
        (InputError, AtomicReactorError, 2, "input"),
        (InvalidImageName, InputError, 2, "input"),
        (SourceError, InputError, 2, "input"),
        (DockerfileError, InputError, 2, "input"),
        (BuildJsonError, InputError, 2, "input"),
        (PluginConfigError, InputError, 2, "input"),
        (BuildFailed, AtomicReactorError, 3, "build"),
        (RegistryError, AtomicReactorError, 4, "registry"),
        (PullError, RegistryError, 4, "registry"),
        (PushError, RegistryError, 4, "registry"),
        (AuthenticationError, RegistryError, 4, "registry"),
        (EngineError, AtomicReactorError, 6, "engine"),
        (EngineUnavailable, EngineError, 6, "engine"),
        (ImageNotFound, EngineError, 6, "engine"),
    ],
)
def test_tree_exit_codes_and_categories(cls: type[AtomicReactorError], parent: type[Exception],
                                         exit_code: int, category: str) -> None:
    assert issubclass(cls, parent)
    error = cls("something went wrong")
    assert isinstance(error, AtomicReactorError)
    assert error.exit_code == exit_code
    assert error.category == category
    assert str(error) == "something went wrong"
    assert error.message == "something went wrong"
    assert error.to_dict() == {"type": cls.__name__, "category": category,
                               "message": "something went wrong"}


def test_every_public_error_is_an_atomic_reactor_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, AtomicReactorError), name


def test_invalid_image_name_is_a_value_error() -> None:
    assert issubclass(InvalidImageName, ValueError)


def test_plugin_config_error_names_plugin_and_argument() -> None:
    error = PluginConfigError("bad", plugin="tag_and_push", argument="registries")
    assert error.plugin == "tag_and_push"
    assert error.argument == "registries"
    plain = PluginConfigError("bad")
    assert plain.plugin is None
    assert plain.argument is None


def test_registry_error_keeps_registry() -> None:
    assert PushError("no", registry="localhost:5000").registry == "localhost:5000"
    assert PullError("no").registry is None


def test_plugin_failed_without_cause_exits_5() -> None:
    error = PluginFailed("p: boom", plugin="p")
    assert error.exit_code == 5
    assert error.category == "plugin"
    assert error.cause is None
    assert error.to_dict() == {"type": "PluginFailed", "category": "plugin",
                               "message": "p: boom", "plugin": "p"}


def test_plugin_failed_with_foreign_cause_exits_5() -> None:
    error = PluginFailed("p: KeyError", plugin="p", cause=KeyError("x"))
    assert error.exit_code == 5
    assert error.category == "plugin"
    assert error.to_dict()["cause"] == "KeyError"


@pytest.mark.parametrize(
    ("cause", "exit_code", "category"),
    [
        (PushError("denied", registry="r:5000"), 4, "registry"),
        (AuthenticationError("who?"), 4, "registry"),
        (BuildFailed("RUN failed"), 3, "build"),
        (InputError("bad"), 2, "input"),
        (DockerfileError("no FROM"), 2, "input"),
        (EngineUnavailable("no engine"), 6, "engine"),
        (AtomicReactorError("unexpected"), 1, "error"),
    ],
)
def test_plugin_failed_takes_its_causes_exit_code(cause: AtomicReactorError, exit_code: int,
                                                  category: str) -> None:
    error = PluginFailed(f"tag_and_push: {cause}", plugin="tag_and_push", cause=cause)
    assert error.exit_code == exit_code
    assert error.category == category
    assert error.cause is cause
    assert error.plugin == "tag_and_push"
    data = error.to_dict()
    assert data["plugin"] == "tag_and_push"
    assert data["cause"] == type(cause).__name__
    assert data["category"] == category


def test_plugin_failed_cause_does_not_change_the_class() -> None:
    PluginFailed("x", plugin="p", cause=PushError("denied"))
    assert PluginFailed("y", plugin="q").exit_code == 5
    assert PluginFailed("y", plugin="q").category == "plugin"


def test_nested_plugin_failed_keeps_innermost_code() -> None:
    inner = PluginFailed("inner", plugin="a", cause=PushError("denied"))
    outer = PluginFailed("outer", plugin="b", cause=inner)
    assert outer.exit_code == 4


@pytest.mark.parametrize(
    ("signum", "exit_code", "name"),
    [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM"), (2, 130, "SIGINT"),
     (15, 143, "SIGTERM")],
)
def test_build_cancelled_exit_codes(signum: int, exit_code: int, name: str) -> None:
    error = BuildCancelled(signum)
    assert error.exit_code == exit_code
    assert error.signum == signum
    assert error.category == "cancel"
    assert name in str(error)
    assert error.results is None
    assert isinstance(error, AtomicReactorError)


def test_build_cancelled_defaults_to_sigterm() -> None:
    error = BuildCancelled()
    assert error.exit_code == 143
    assert error.signum == signal.SIGTERM


def test_build_cancelled_as_plugin_cause() -> None:
    error = PluginFailed("cancelled", plugin="p", cause=BuildCancelled(signal.SIGINT))
    assert error.exit_code == 130
    assert error.category == "cancel"


def test_errors_can_be_caught_by_the_root() -> None:
    with pytest.raises(AtomicReactorError):
        raise PushError("denied", registry="r")
    with pytest.raises(RegistryError):
        raise AuthenticationError("who?")
    with pytest.raises(InputError):
        raise PluginConfigError("unknown plugin", plugin="x")
