"""The buildah engine's record of registry digests (image id, repository -> digest)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from atomic_reactor._engine.buildah import digests
from atomic_reactor._engine.buildah.digests import DigestRecord, default_record

IMAGE = "sha256:" + "a" * 64
OTHER = "b" * 64
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_recorded_digests_count_for_their_image_only(tmp_path: Path) -> None:
    record = DigestRecord(tmp_path / "state" / "r.json")
    assert record.for_image(IMAGE) == {}  # nothing recorded yet: no file needed
    record.remember(IMAGE, "reg:5000/ns/app", D1)
    record.remember(OTHER, "reg:5000/ns/app", D2)
    record.remember(IMAGE, "other:5000/app", D2)
    assert record.for_image(IMAGE) == {"reg:5000/ns/app": D1, "other:5000/app": D2}
    assert record.for_image(IMAGE.removeprefix("sha256:")) == record.for_image(IMAGE)
    assert record.for_image("sha256:" + OTHER) == {"reg:5000/ns/app": D2}
    # a later pull or push of the same image and repository replaces the digest
    record.remember(IMAGE, "reg:5000/ns/app", D2)
    assert record.for_image(IMAGE)["reg:5000/ns/app"] == D2
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_nonsense_is_not_recorded_and_a_broken_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    record = DigestRecord(path)
    record.remember("", "reg/app", D1)
    record.remember(IMAGE, "", D1)
    record.remember(IMAGE, "reg/app", "not-a-digest")
    assert not path.exists()
    path.write_text("{not json")
    assert record.for_image(IMAGE) == {}
    record.remember(IMAGE, "reg/app", D1)  # starts afresh
    assert record.for_image(IMAGE) == {"reg/app": D1}


def test_the_oldest_records_go_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digests, "LIMIT", 3)
    record = DigestRecord(tmp_path / "r.json")
    for n in range(5):
        record.remember(IMAGE, f"reg/app{n}", D1)
    assert sorted(record.for_image(IMAGE)) == ["reg/app2", "reg/app3", "reg/app4"]


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.json"

    def write(n: int) -> None:
        DigestRecord(path).remember(IMAGE, f"reg/app{n}", D1)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(DigestRecord(path).for_image(IMAGE)) == 20
    assert len(json.loads(path.read_text())["records"]) == 20


def test_one_record_per_storage_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    first, second = default_record("/srv/a"), default_record("/srv/b")
    assert first.path != second.path
    assert first.path.parent == tmp_path / "atomic-reactor" / "buildah-digests"
    assert default_record(None).path == default_record("/var/lib/containers/storage").path


def test_the_file_is_parsed_again_only_when_it_changed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    ours, theirs = DigestRecord(path), DigestRecord(path)  # theirs: another process's
    ours.remember(IMAGE, "reg/app", D1)
    parsed: list[int] = []
    real_loads = json.loads

    def counting(text: str) -> object:
        parsed.append(len(text))
        return real_loads(text)

    monkeypatch.setattr(json, "loads", counting)
    for _ in range(3):  # what this record wrote itself is not read back
        assert ours.for_image(IMAGE) == {"reg/app": D1}
    assert parsed == []
    theirs.remember(OTHER, "reg/app", D2)  # replaced by another writer: read again
    assert ours.for_image(OTHER) == {"reg/app": D2} and len(parsed) == 2
    assert ours.by_image()[IMAGE.removeprefix("sha256:")] == {"reg/app": D1}
    assert len(parsed) == 2
