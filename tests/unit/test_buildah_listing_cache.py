"""The buildah engine's cache of ``buildah images`` entries (names.ListingCache)."""

from __future__ import annotations

from typing import Any

from atomic_reactor._engine.buildah.names import ListingCache, normal_name

BASE = "a" * 64
BUILT = "b" * 64
OLD = "c" * 64


def entry(image_id: str, *names: str) -> dict[str, Any]:
    return {"id": image_id, "names": list(names), "digest": ""}


def filled() -> ListingCache:
    cache = ListingCache()
    cache.store([entry(BASE, "reg:5000/ns/base:latest"), entry(OLD, "localhost/app:1")])
    return cache


def test_normal_name() -> None:
    assert normal_name("app") == "localhost/app:latest"
    assert normal_name("app:1") == "localhost/app:1"
    assert normal_name("reg:5000/ns/app") == "reg:5000/ns/app:latest"
    assert normal_name("reg:5000/ns/app@sha256:" + "0" * 64) == \
        "reg:5000/ns/app@sha256:" + "0" * 64


def test_lookup_by_id_and_by_name() -> None:
    cache = filled()
    assert cache.lookup(BASE) == entry(BASE, "reg:5000/ns/base:latest")
    assert cache.lookup(f"sha256:{BASE}") is cache.lookup(BASE)
    assert cache.lookup("reg:5000/ns/base") is cache.lookup(BASE)
    assert cache.lookup("app:1") == entry(OLD, "localhost/app:1")
    assert cache.lookup("other:1") is None
    assert cache.lookup(BASE[:12]) is None  # short ids: asked again


def test_reading_commands_keep_entries() -> None:
    cache = filled()
    for args in (["images", "--json"], ["inspect", "--type", "image", BASE],
                 ["push", "--retry", "0", "app:1", "docker://reg/app:1"],
                 ["--log-level=debug", "from", "--pull=false", "app:1"]):
        cache.ran(args, True)
    assert cache.lookup(BASE) is not None and cache.lookup(OLD) is not None


def test_other_commands_forget_everything() -> None:
    for args in (["pull", "reg:5000/ns/base"], ["rmi", "app:1"], ["commit", "x", "y"],
                 ["--root", "/tmp/r", "pull", "x"]):
        cache = filled()
        cache.ran(args, True)
        assert cache.lookup(BASE) is None and cache.lookup(OLD) is None, args


def test_tag_moves_the_name() -> None:
    cache = filled()
    cache.store([entry(BUILT)])
    assert not cache.has_name(BUILT, "app:1")
    cache.ran(["tag", f"sha256:{BUILT}", "app:1"], True)
    assert cache.has_name(BUILT, "app:1")
    assert cache.lookup("app:1") == entry(BUILT, "localhost/app:1")
    assert cache.lookup(OLD) == entry(OLD)  # the name left the old image
    cache.ran(["tag", BUILT, "app:2"], False)  # a failed tag changes nothing
    assert not cache.has_name(BUILT, "app:2")
    cache.ran(["tag", "app:1", "app:3"], True)  # by name: forget all
    assert cache.lookup(BUILT) is None


def test_build_forgets_the_images_whose_tag_it_takes() -> None:
    cache = filled()
    cache.ran(["--log-level=debug", "bud", "--layers", "--pull=false", "-t", "app:1", "/ctx"],
              True)
    assert cache.lookup(OLD) is None
    assert cache.lookup(BASE) is not None
    cache.ran(["bud", "--pull-always", "-t", "other", "/ctx"], True)  # may re-pull bases
    assert cache.lookup(BASE) is None


def test_the_image_a_name_was_given_is_remembered_until_something_moves_it() -> None:
    cache = filled()
    cache.ran(["tag", f"sha256:{BUILT}", "reg:5000/app:1"], True)
    assert cache.named("reg:5000/app:1") == BUILT
    cache.note_named(f"sha256:{BASE}", "reg:5000/ns/base")  # a tag found not needed
    assert cache.named("reg:5000/ns/base:latest") == BASE
    cache.ran(["push", BUILT, "docker://reg:5000/app:1"], True)  # pushing moves nothing
    assert cache.named("reg:5000/app:1") == BUILT
    cache.ran(["bud", "--pull=false", "-t", "reg:5000/app:1", "/ctx"], True)
    assert cache.named("reg:5000/app:1") is None  # the new build has the name now
    assert cache.named("reg:5000/ns/base") == BASE
    cache.ran(["tag", "app:2", "reg:5000/ns/base"], True)  # by name: not known which
    assert cache.named("reg:5000/ns/base") is None
    cache.ran(["tag", BUILT, "reg:5000/app:3"], True)
    cache.ran(["rmi", "reg:5000/app:3"], True)
    assert cache.named("reg:5000/app:3") is None


def test_a_build_names_its_image() -> None:
    cache = filled()
    cache.ran(["bud", "--pull=false", "-t", "reg:5000/app:1", "/ctx"], True)
    assert cache.named("reg:5000/app:1") is None
    cache.note_built(f"sha256:{BUILT}", ["reg:5000/app:1"])
    assert cache.named("reg:5000/app:1") == BUILT
    cache.ran(["bud", "--pull=false", "-t", "reg:5000/app:1", "/ctx"], True)  # a new one
    assert cache.named("reg:5000/app:1") is None


def test_a_listing_under_way_gets_what_changed_meanwhile() -> None:
    cache = ListingCache()
    since = cache.generation()
    # while the listing ran: a build took the name app:1, then a tag by id moved base:2
    cache.ran(["bud", "--pull=false", "-t", "app:1", "/ctx"], True)
    cache.ran(["tag", BASE, "reg:5000/ns/base:2"], True)
    cache.store([entry(OLD, "localhost/app:1", "localhost/app:old"),
                 entry(BASE, "reg:5000/ns/base:latest"),
                 entry(BUILT, "reg:5000/ns/base:2")], since)
    assert cache.lookup(OLD) is None  # it lost app:1: not known what else it has
    assert cache.lookup(BASE) == entry(BASE, "reg:5000/ns/base:latest", "reg:5000/ns/base:2")
    assert cache.lookup(BUILT) == entry(BUILT)
    assert cache.lookup("reg:5000/ns/base:2") is cache.lookup(BASE)


def test_a_listing_under_way_is_dropped_when_anything_may_have_moved() -> None:
    for change in (["rmi", "app:1"], ["tag", "app:1", "app:2"], ["pull", "x"],
                   ["tag", OLD, "app:2"]):  # a tag of an image the listing lacks
        cache = ListingCache()
        since = cache.generation()
        cache.ran(change, True)
        cache.store([entry(BASE, "reg:5000/ns/base:latest")], since)
        assert cache.lookup(BASE) is None, change
    cache = ListingCache()
    since = cache.generation()
    for _ in range(100):  # more than it remembers
        cache.ran(["bud", "--pull=false", "-t", "app:1", "/ctx"], True)
    cache.store([entry(BASE, "reg:5000/ns/base:latest")], since)
    assert cache.lookup(BASE) is None
    cache.ran(["push", BASE, "docker://reg/x"], True)  # keeps: no change counted
    since = cache.generation()
    cache.ran(["images", "--json"], True)
    cache.store([entry(BASE, "reg:5000/ns/base:latest")], since)
    assert cache.lookup(BASE) is not None
