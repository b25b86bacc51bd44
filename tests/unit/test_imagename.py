"""Unit tests of image references (atomic_reactor.util.ImageName / _reference)."""

from __future__ import annotations

import pytest

from atomic_reactor.errors import InputError, InvalidImageName
from atomic_reactor.util import DEFAULT_TAG, ImageName

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "namespace", "repo", "tag", "digest"),
    [
        ("fedora", None, None, "fedora", None, None),
        ("fedora:39", None, None, "fedora", "39", None),
        ("library/fedora", None, "library", "fedora", None, None),
        ("localhost:5000/a/b/c:1", "localhost:5000", "a", "b/c", "1", None),
        ("127.0.0.1:5101/fedora", "127.0.0.1:5101", None, "fedora", None, None),
        ("localhost/fedora", "localhost", None, "fedora", None, None),
        ("registry.example.com/ns/repo:v1.2-3_x", "registry.example.com", "ns", "repo",
         "v1.2-3_x", None),
        ("repo@" + DIGEST, None, None, "repo", None, DIGEST),
        ("reg.io:443/ns/repo:tag@" + DIGEST, "reg.io:443", "ns", "repo", "tag", DIGEST),
        ("[::1]:5000/foo:1", "[::1]:5000", None, "foo", "1", None),
        ("my-ns/my_repo.name__x", None, "my-ns", "my_repo.name__x", None, None),
        # a single component with a colon is repo:tag, as docker reads it
        ("localhost:5000", None, None, "localhost", "5000", None),
    ],
)
def test_parse_parts(text: str, registry: str | None, namespace: str | None, repo: str,
                     tag: str | None, digest: str | None) -> None:
    name = ImageName.parse(text)
    assert name.registry == registry
    assert name.namespace == namespace
    assert name.repo == repo
    assert name.tag == tag
    assert name.digest == digest


@pytest.mark.parametrize(
    "text",
    [
        "fedora",
        "fedora:latest",
        "fedora:39",
        "127.0.0.1:5101/fedora",
        "library/fedora:39",
        "localhost:5000/a/b/c:1",
        "127.0.0.1:5101/fedora:latest",
        "repo@" + DIGEST,
        "repo:1@" + DIGEST,
        "reg.io:443/ns/repo:tag@" + DIGEST,
        "[::1]:5000/foo:1",
    ],
)
def test_to_str_round_trip(text: str) -> None:
    name = ImageName.parse(text)
    assert name.to_str() == text
    assert str(name) == text
    assert ImageName.parse(name.to_str()) == name


def test_untagged_name_keeps_tag_none_as_in_1_6() -> None:
    name = ImageName.parse("fedora")
    assert name.tag is None
    assert name.to_str() == "fedora"
    assert name == ImageName(repo="fedora")
    assert name != ImageName.parse("fedora:latest")
    assert ImageName.parse("127.0.0.1:5101/fedora").to_str() == "127.0.0.1:5101/fedora"


def test_with_default_tag_is_what_an_engine_uses() -> None:
    assert DEFAULT_TAG == "latest"
    name = ImageName.parse("127.0.0.1:5101/fedora")
    tagged = name.with_default_tag()
    assert tagged.to_str() == "127.0.0.1:5101/fedora:latest"
    assert name.tag is None  # the value itself is not changed
    assert name.to_str(explicit_tag=True) == str(tagged)
    assert ImageName.parse("fedora:39").with_default_tag().tag == "39"
    assert ImageName.parse("repo@" + DIGEST).with_default_tag().tag is None


def test_digest_only_gets_no_default_tag() -> None:
    name = ImageName.parse("repo@" + DIGEST)
    assert name.tag is None
    assert name.to_str() == "repo@" + DIGEST
    # explicit_tag does not invent a tag next to a digest
    assert name.to_str(explicit_tag=True) == "repo@" + DIGEST


def test_explicit_tag_on_untagged_name() -> None:
    name = ImageName(repo="fedora")
    assert name.to_str() == "fedora"
    assert name.to_str(explicit_tag=True) == "fedora:latest"


def test_to_str_parts() -> None:
    name = ImageName.parse("localhost:5000/a/b/c:1")
    assert name.to_str(registry=False) == "a/b/c:1"
    assert name.to_str(tag=False) == "localhost:5000/a/b/c"
    assert name.to_str(registry=False, tag=False) == "a/b/c"
    assert name.name == "localhost:5000/a/b/c"
    assert name.get_repo() == "a/b/c"


def test_explicit_namespace() -> None:
    plain = ImageName.parse("fedora:39")
    assert plain.to_str(explicit_namespace=True) == "library/fedora:39"
    assert plain.get_repo(explicit_namespace=True) == "library/fedora"
    assert plain.get_repo() == "fedora"
    with_ns = ImageName.parse("myns/fedora:39")
    assert with_ns.to_str(explicit_namespace=True) == "myns/fedora:39"
    registry = ImageName.parse("localhost:5000/fedora")
    assert registry.to_str(explicit_namespace=True) == "localhost:5000/library/fedora"


def test_copy_replaces_parts_and_leaves_original() -> None:
    original = ImageName.parse("fedora:39")
    moved = original.copy(registry="localhost:5000", tag="40")
    assert moved.to_str() == "localhost:5000/fedora:40"
    assert original.to_str() == "fedora:39"
    assert moved is not original
    same = original.copy()
    assert same == original
    assert same is not original
    assert ImageName.parse("localhost:5000/x:1").copy(registry=None).to_str() == "x:1"
    with pytest.raises(TypeError, match="no part 'colour'"):
        original.copy(colour="red")


def test_parts_can_be_assigned_as_in_1_6() -> None:
    name = ImageName.parse("fedora:39")
    copy = name.copy()
    name.registry = "localhost:5000"
    name.namespace = "ns"
    name.tag = "40"
    assert name.to_str() == "localhost:5000/ns/fedora:40"
    assert copy.to_str() == "fedora:39"  # a copy does not follow
    name.repo = "centos"
    name.tag = None
    assert str(name) == "localhost:5000/ns/centos"


def test_equality_and_hash_follow_the_parts() -> None:
    name = ImageName.parse("fedora:39")
    assert {name, ImageName.parse("fedora:39")} == {name}
    assert hash(name) == hash("fedora:39")
    assert name != "fedora:39"
    assert ImageName() == ImageName()
    assert isinstance(hash(ImageName()), int)


def test_digest_kept_in_tag_prints_as_digest_as_in_1_6() -> None:
    # 1.6 parsed "repo@sha256:..." into tag; code that builds such names still prints right
    name = ImageName(repo="repo", tag=DIGEST)
    assert name.to_str() == "repo@" + DIGEST


def test_parse_passes_image_name_through() -> None:
    name = ImageName.parse("fedora:39")
    assert ImageName.parse(name) is name


def test_surrounding_white_space_is_ignored() -> None:
    assert ImageName.parse("  fedora:39\n").to_str() == "fedora:39"


def test_to_str_without_repo_is_an_error() -> None:
    with pytest.raises(InvalidImageName, match="no repository"):
        ImageName().to_str()


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("foo bar", "white space"),
        ("foo\tbar", "white space"),
        ("UPPER", "component 'UPPER'"),
        ("ns/Repo:1", "component 'Repo'"),
        ("foo..bar", "component 'foo..bar'"),
        ("foo-", "component 'foo-'"),
        ("-foo", "component '-foo'"),
        ("foo:bar:baz", "component 'foo:bar'"),
        ("foo:", "tag ''"),
        ("foo:-bad", "tag '-bad'"),
        ("foo:.bad", "tag '.bad'"),
        ("foo:bad!", "tag 'bad!'"),
        ("foo:" + "a" * 129, "tag 'aaaa"),
        ("foo@", "digest ''"),
        ("foo@md5", "digest 'md5'"),
        ("foo@sha256:xyz", "digest 'sha256:xyz'"),
        ("/foo", "empty path component"),
        ("foo/", "empty path component"),
        ("a//b", "empty path component"),
        ("localhost:5000/", "empty path component"),
        (":tag", "empty path component"),
        ("@" + DIGEST, "empty path component"),
        ("a:b/c", "registry 'a:b'"),
        ("reg.io:port/foo", "registry 'reg.io:port'"),
        ("reg_io.com/foo", "registry 'reg_io.com'"),
        ("x" * 256, "longer than 255"),
        ("localhost:5000/" + "x" * 245, "longer than 255"),
    ],
)
def test_invalid_names_say_what_is_wrong(text: str, what: str) -> None:
    with pytest.raises(InvalidImageName) as info:
        ImageName.parse(text)
    message = str(info.value)
    assert message.startswith("invalid image name")
    assert what in message
    # an invalid name is bad input (exit 2) and, as in 1.6, a ValueError
    assert isinstance(info.value, InputError)
    assert isinstance(info.value, ValueError)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("value", [None, 123, b"fedora", ["fedora"]])
def test_non_string_is_invalid(value: object) -> None:
    with pytest.raises(InvalidImageName, match="not a string"):
        ImageName.parse(value)  # type: ignore[arg-type]


def test_longest_valid_name_is_accepted() -> None:
    name = "x" * 255
    assert ImageName.parse(name).repo == name
