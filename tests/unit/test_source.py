"""Tests of atomic_reactor.source against real git repositories made in tmp_path."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import shutil
import socket
import stat
import subprocess
import sys
import time
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any

import pytest

from atomic_reactor import _git
from atomic_reactor.errors import DockerfileError, InputError, SourceError
from atomic_reactor.source import (
    GitSource,
    PathSource,
    Source,
    SourceSpec,
    VcsInfo,
    get_source_instance_for,
)

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path | str, *args: str) -> str:
    env = {**os.environ, **_GIT_ENV}
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(key, None)
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class Repo:
    path: Path
    c1: str  # tagged v1 (annotated) and light (lightweight); Dockerfile "FROM one"
    c2: str  # tip of main; Dockerfile "FROM two"
    c3: str  # tip of branch feature


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    path = tmp_path / "upstream"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "Dockerfile").write_text("FROM one\n")
    (path / "sub").mkdir()
    (path / "sub" / "Dockerfile").write_text("FROM sub\n")
    (path / "Containerfile.custom").write_text("FROM custom\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "one")
    c1 = git(path, "rev-parse", "HEAD")
    git(path, "tag", "-a", "-m", "version 1", "v1")
    git(path, "tag", "light")
    (path / "Dockerfile").write_text("FROM two\n")
    git(path, "commit", "-q", "-a", "-m", "two")
    c2 = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "feature.txt").write_text("feature\n")
    git(path, "add", "feature.txt")
    git(path, "commit", "-q", "-m", "three")
    c3 = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "main")
    return Repo(path, c1, c2, c3)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A tmpdir for sources, removed with tmp_path."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def git_source(repo: Repo | str, work: Path, commit: str | None = None, **kw: Any) -> GitSource:
    uri = str(repo.path) if isinstance(repo, Repo) else repo
    params = {} if commit is None else {"git_commit": commit}
    return GitSource("git", uri, provider_params=params, tmpdir=work, **kw)


def fetched(repo: Repo | str, work: Path, commit: str | None = None) -> GitSource:
    source = git_source(repo, work, commit)
    source.get()
    return source


def is_shallow(path: str) -> bool:
    return git(path, "rev-parse", "--is-shallow-repository") == "true"


def commit_count(path: str) -> int:
    return int(git(path, "rev-list", "--count", "HEAD"))


# -- git: which commit ----------------------------------------------------------------


def test_git_default_branch(repo: Repo, work: Path) -> None:
    source = git_source(repo, work)
    root = source.path
    assert source.commit_id == repo.c2
    assert Path(root, "Dockerfile").read_text() == "FROM two\n"
    assert not Path(root, "feature.txt").exists()
    assert Path(root).parent == work.resolve()
    assert is_shallow(root)


def test_git_branch_is_fetched_shallow(repo: Repo, work: Path) -> None:
    source = git_source(repo, work, "feature")
    root = source.path
    assert source.commit_id == repo.c3
    assert Path(root, "feature.txt").read_text() == "feature\n"
    assert git(root, "rev-parse", "HEAD") == repo.c3
    assert is_shallow(root)
    assert commit_count(root) == 1


@pytest.mark.parametrize("tag", ["v1", "light", "refs/tags/v1"])
def test_git_tag(repo: Repo, work: Path, tag: str) -> None:
    source = fetched(repo, work, tag)
    assert source.commit_id == repo.c1
    assert Path(source.path, "Dockerfile").read_text() == "FROM one\n"
    assert is_shallow(source.path)


def test_git_full_commit_id(repo: Repo, work: Path) -> None:
    source = fetched(repo, work, repo.c1)
    assert source.commit_id == repo.c1
    assert git(source.path, "rev-parse", "HEAD") == repo.c1
    assert Path(source.path, "Dockerfile").read_text() == "FROM one\n"


def test_git_full_commit_id_server_refusing_sha(
    repo: Repo, work: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # protocol v0 refuses a want for an unadvertised commit: the shallow fetch
    # fails and the full fetch takes over
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    (repo.path / "Dockerfile").write_text("FROM four\n")
    git(repo.path, "commit", "-q", "-a", "-m", "four")  # c2 is no longer advertised
    with caplog.at_level(logging.INFO, logger="atomic_reactor.source"):
        source = fetched(repo, work, repo.c2)
    assert "unadvertised object" in caplog.text  # the shallow attempt was refused
    assert source.commit_id == repo.c2
    assert not is_shallow(source.path)
    assert Path(source.path, "Dockerfile").read_text() == "FROM two\n"


def test_git_short_commit_id(repo: Repo, work: Path) -> None:
    source = fetched(repo, work, repo.c1[:8])
    assert source.commit_id == repo.c1
    assert len(source.commit_id) == 40
    assert Path(source.path, "Dockerfile").read_text() == "FROM one\n"
    assert not is_shallow(source.path)  # found through the full fetch


def test_git_file_uri(repo: Repo, work: Path) -> None:
    source = fetched(repo.path.as_uri(), work, "feature")
    assert source.commit_id == repo.c3


def test_git_relative_local_path(
    repo: Repo, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = fetched("upstream", work, "main")
    assert source.commit_id == repo.c2


def test_git_ignores_git_dir_in_environment(
    repo: Repo, work: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    source = fetched(repo, work, "feature")
    assert source.commit_id == repo.c3
    assert Path(source.path, ".git").is_dir()


def test_git_get_is_done_once(repo: Repo, work: Path) -> None:
    source = git_source(repo, work)
    first = source.get()
    assert source.get() == first == source.path
    assert len(list(work.iterdir())) == 1


# -- git: failures --------------------------------------------------------------------


@pytest.mark.parametrize("commit", ["nope", "deadbeef12", "f" * 40, "refs/heads/nope"])
def test_git_commit_not_found(repo: Repo, work: Path, commit: str) -> None:
    source = git_source(repo, work, commit)
    with pytest.raises(SourceError) as info:
        source.get()
    assert str(info.value) == f"commit '{commit}' not found in {repo.path}"
    assert source.commit_id is None
    assert list(work.iterdir()) == []  # nothing half-fetched is left behind


def test_git_commit_is_not_a_commit(repo: Repo, work: Path) -> None:
    tree = git(repo.path, "rev-parse", "HEAD^{tree}")
    git(repo.path, "tag", "treetag", tree)
    with pytest.raises(SourceError, match="does not name a commit"):
        git_source(repo, work, "treetag").get()


@pytest.mark.parametrize("kind", ["plain dir", "missing", "file uri"])
def test_git_uri_not_a_repository(tmp_path: Path, work: Path, kind: str) -> None:
    target = tmp_path / "not-a-repo"
    if kind != "missing":
        target.mkdir()
    uri = target.as_uri() if kind == "file uri" else str(target)
    source = git_source(uri, work, "main")
    with pytest.raises(SourceError) as info:
        source.get()
    message = str(info.value)
    assert message.startswith(f"cannot fetch git repository {uri}: ")
    assert "\n" not in message
    assert list(work.iterdir()) == []


def test_git_uri_starting_with_dash_is_refused(tmp_path: Path, work: Path) -> None:
    marker = tmp_path / "pwned"
    source = git_source(f"--upload-pack=touch {marker}", work)
    with pytest.raises(SourceError, match="starts with '-'"):
        source.get()
    assert not marker.exists()
    assert list(work.iterdir()) == []  # refused before git ran


@pytest.mark.parametrize("commit", ["--upload-pack=touch pwned", "-b", "-"])
def test_git_commit_starting_with_dash_is_refused(
    repo: Repo, work: Path, tmp_path: Path, commit: str
) -> None:
    source = git_source(repo, work, commit)
    with pytest.raises(SourceError, match="starts with '-'"):
        source.get()
    assert list(work.iterdir()) == []
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("commit", ["", "main:refs/heads/x", "+main", "a..b", "HEAD~1", "a b"])
def test_git_malformed_commit_is_refused(repo: Repo, work: Path, commit: str) -> None:
    with pytest.raises(SourceError, match="refusing git_commit"):
        git_source(repo, work, commit).get()


def test_git_credentials_never_shown(work: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    uri = "https://user:s3cr3t@127.0.0.1:1/repo.git"  # nothing listens on port 1
    source = git_source(uri, work, "main")
    with pytest.raises(SourceError) as info:
        source.get()
    assert "s3cr3t" not in str(info.value)
    assert "https://***@127.0.0.1:1/repo.git" in str(info.value)
    assert "s3cr3t" not in caplog.text
    assert "s3cr3t" not in repr(source)
    assert "s3cr3t" not in repr(SourceSpec("git", uri))


def test_redaction_helpers() -> None:
    text = "fetch https://u:p@ss@host/r.git and ssh://git@host:22/x, not https://host/a@b"
    assert _git.redact_uri(text) == (
        "fetch https://***@host/r.git and ssh://***@host:22/x, not https://host/a@b"
    )
    assert _git.strip_credentials("https://tok@host/r.git") == "https://host/r.git"


def test_git_fetched_repository_keeps_no_uri(repo: Repo, work: Path) -> None:
    source = git_source(repo, work, "feature")
    git_dir = Path(source.path, ".git")
    for path in git_dir.rglob("*"):
        if path.is_file() and not path.is_relative_to(git_dir / "objects"):
            assert str(repo.path) not in path.read_text(errors="replace"), path


# -- vcs info -------------------------------------------------------------------------


def test_git_vcs_info(repo: Repo, work: Path) -> None:
    source = git_source(repo, work, "feature")
    info = source.get_vcs_info()  # fetches on demand
    assert info == VcsInfo(vcs_type="git", vcs_url=str(repo.path), vcs_ref=repo.c3)
    with pytest.raises(FrozenInstanceError):
        info.vcs_ref = "x"  # type: ignore[misc]


def test_path_source_has_no_vcs_info(repo: Repo, work: Path) -> None:
    assert PathSource("path", repo.path.as_uri(), tmpdir=work).get_vcs_info() is None


# -- path -----------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A directory to build from, with a sibling holding a secret."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    src = tmp_path / "project"
    (src / "sub").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM base\n")
    (src / "sub" / "Dockerfile").write_text("FROM sub\n")
    (src / "Containerfile.custom").write_text("FROM custom\n")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return src


def test_path_source_copies(tree: Path, work: Path) -> None:
    source = PathSource("path", tree.as_uri(), tmpdir=work)
    root = Path(source.path)
    assert root != tree
    assert root.parent == work.resolve()
    assert (root / "Dockerfile").read_text() == "FROM base\n"
    assert (root / ".git" / "HEAD").is_file()  # everything is kept
    (root / "Dockerfile").write_text("FROM changed\n")
    (root / "sub" / "new").write_text("x")
    assert (tree / "Dockerfile").read_text() == "FROM base\n"
    assert not (tree / "sub" / "new").exists()


def test_path_source_plain_absolute_path(tree: Path, work: Path) -> None:
    source = PathSource("path", str(tree), tmpdir=work)
    assert Path(source.path, "sub", "Dockerfile").read_text() == "FROM sub\n"


def test_path_source_percent_encoded_uri(tmp_path: Path, work: Path) -> None:
    odd = tmp_path / "with space#1"
    odd.mkdir()
    (odd / "Dockerfile").write_text("FROM odd\n")
    source = PathSource("path", odd.as_uri(), tmpdir=work)
    assert Path(source.path, "Dockerfile").read_text() == "FROM odd\n"


def test_path_source_missing_directory(tmp_path: Path, work: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(SourceError, match=f"path source {missing} does not exist"):
        PathSource("path", missing.as_uri(), tmpdir=work).get()
    assert list(work.iterdir()) == []


def test_path_source_not_a_directory(tmp_path: Path, work: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SourceError, match="is not a directory"):
        PathSource("path", str(afile), tmpdir=work).get()


@pytest.mark.parametrize(
    "uri", ["relative/dir", "file://otherhost/abs", "file:relative", "file:///a?b=c"]
)
def test_path_source_bad_uri(work: Path, uri: str) -> None:
    with pytest.raises(SourceError, match="path source uri"):
        PathSource("path", uri, tmpdir=work).get()


def test_path_source_symlink_outside_removed(
    tree: Path, tmp_path: Path, work: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    (tree / "abs-out").symlink_to(outside / "secret")
    (tree / "rel-out").symlink_to("../outside/secret")
    (tree / "dir-out").symlink_to(outside, target_is_directory=True)
    (tree / "sub" / "to-original").symlink_to(tree / "Dockerfile")  # the original, not the copy
    (tree / "chain").symlink_to("rel-out")
    with caplog.at_level(logging.WARNING):
        root = Path(PathSource("path", tree.as_uri(), tmpdir=work).path)
    for name in ("abs-out", "rel-out", "dir-out", "sub/to-original", "chain"):
        assert not os.path.lexists(root / name), name
        assert os.path.islink(tree / name), name  # the original is untouched
    assert "rel-out" in caplog.text
    assert not any(p.name == "secret" for p in root.rglob("*"))


def test_path_source_symlink_inside_kept(tree: Path, work: Path) -> None:
    (tree / "Dockerfile.link").symlink_to("Dockerfile")
    (tree / "sub" / "up").symlink_to("../Containerfile.custom")
    (tree / "subdir-link").symlink_to("sub", target_is_directory=True)
    (tree / "dangling").symlink_to("does-not-exist")
    root = Path(PathSource("path", tree.as_uri(), tmpdir=work).path)
    assert os.readlink(root / "Dockerfile.link") == "Dockerfile"  # a link, not a copy
    assert (root / "Dockerfile.link").read_text() == "FROM base\n"
    assert (root / "sub" / "up").read_text() == "FROM custom\n"
    assert (root / "subdir-link").is_symlink()
    assert (root / "dangling").is_symlink()


def test_path_source_skips_special_files(tree: Path, work: Path) -> None:
    os.mkfifo(tree / "pipe")
    root = Path(PathSource("path", tree.as_uri(), tmpdir=work).path)
    assert not os.path.lexists(root / "pipe")
    assert (root / "Dockerfile").exists()


_UNREADABLE_CHECK = """
import os, sys, tempfile
from pathlib import Path
from atomic_reactor.errors import SourceError
from atomic_reactor.source import PathSource

top = Path(tempfile.mkdtemp())
tree, work = top / "tree", top / "work"
tree.mkdir()
work.mkdir()
(tree / "Dockerfile").write_text("FROM scratch\\n")
locked = tree / "locked"
locked.write_text("x")
locked.chmod(0)
assert not os.access(locked, os.R_OK), "permissions not enforced"
try:
    PathSource("path", tree.as_uri(), tmpdir=work).get()
except SourceError as exc:
    assert str(exc).startswith(f"cannot copy path source {tree}"), exc
else:
    raise SystemExit("no SourceError")
assert list(work.iterdir()) == [], list(work.iterdir())
print("unreadable file refused")
"""


def _run_unprivileged(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this Python as user nobody (root reads any file, so the
    permission check needs an unprivileged user)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to run this check as root")
    scratch = tmp_path / "nobody"
    scratch.mkdir()
    os.chown(scratch, 65534, 65534)
    for parent in [tmp_path, *tmp_path.parents]:  # nobody must reach its scratch dir
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
    env = {"PATH": os.environ.get("PATH", ""), "TMPDIR": str(scratch), "HOME": str(scratch),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
         "-c", script], capture_output=True, text=True, env=env, check=False, timeout=60)


def test_path_source_unreadable_file(tree: Path, work: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        done = _run_unprivileged(_UNREADABLE_CHECK, tmp_path)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "unreadable file refused" in done.stdout
        return
    locked = tree / "locked"
    locked.write_text("x")
    locked.chmod(0)
    try:
        assert not os.access(locked, os.R_OK)
        with pytest.raises(SourceError, match=f"cannot copy path source {tree}"):
            PathSource("path", tree.as_uri(), tmpdir=work).get()
    finally:
        locked.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert list(work.iterdir()) == []


def test_path_source_tmpdir_inside_source_refused(tree: Path) -> None:
    source = PathSource("path", tree.as_uri(), tmpdir=tree / "tmp")
    with pytest.raises(SourceError, match="cannot be copied into itself"):
        source.get()
    source.cleanup()
    assert not (tree / "tmp").exists()


# -- dockerfile_path --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dockerfile_path", "expected", "directory"),
    [
        (None, "Dockerfile", "."),
        ("./", "Dockerfile", "."),
        ("", "Dockerfile", "."),
        (".", "Dockerfile", "."),
        ("sub", "sub/Dockerfile", "sub"),
        ("sub/", "sub/Dockerfile", "sub"),
        ("./sub/../sub", "sub/Dockerfile", "sub"),
        ("sub/Dockerfile", "sub/Dockerfile", "sub"),
        ("Containerfile.custom", "Containerfile.custom", "."),
    ],
)
def test_dockerfile_path(
    tree: Path, work: Path, dockerfile_path: str | None, expected: str, directory: str
) -> None:
    source = PathSource("path", tree.as_uri(), dockerfile_path, tmpdir=work)
    dockerfile, context = source.get_dockerfile_path()
    root = Path(source.path)
    assert dockerfile == str(root / expected)
    assert context == os.path.normpath(root / directory)
    assert os.path.isabs(dockerfile)


def test_dockerfile_path_in_git_source(repo: Repo, work: Path) -> None:
    source = git_source(repo, work, "v1", dockerfile_path="sub")
    dockerfile, context = source.get_dockerfile_path()
    assert Path(dockerfile).read_text() == "FROM sub\n"
    assert context == str(Path(source.path, "sub"))


def test_dockerfile_path_through_inner_symlink(tree: Path, work: Path) -> None:
    (tree / "link-to-sub").symlink_to("sub", target_is_directory=True)
    source = PathSource("path", tree.as_uri(), "link-to-sub", tmpdir=work)
    dockerfile, context = source.get_dockerfile_path()
    assert dockerfile == str(Path(source.path, "sub", "Dockerfile"))
    assert context == str(Path(source.path, "sub"))


@pytest.mark.parametrize(
    "dockerfile_path",
    ["../", "..", "../project/Dockerfile", "sub/../../outside", "/etc", "/", str(Path("/tmp"))],
)
def test_dockerfile_path_escaping_refused(tree: Path, work: Path, dockerfile_path: str) -> None:
    source = PathSource("path", tree.as_uri(), dockerfile_path, tmpdir=work)
    with pytest.raises(SourceError) as info:
        source.get_dockerfile_path()
    assert not isinstance(info.value, DockerfileError)
    assert dockerfile_path in str(info.value)


@pytest.fixture
def repo_with_links(tmp_path: Path) -> Path:
    """A repository whose symlinks point outside it (git keeps them as they are)."""
    outside = tmp_path / "outside-dir"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM evil\n")
    path = tmp_path / "linky"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "Dockerfile").write_text("FROM ok\n")
    (path / "out").symlink_to(outside, target_is_directory=True)
    (path / "Dockerfile.evil").symlink_to(outside / "Dockerfile")
    (path / "in").mkdir()
    (path / "in" / "up").symlink_to("../../outside-dir", target_is_directory=True)
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "links")
    return path


@pytest.mark.parametrize(
    "dockerfile_path", ["out", "out/", "out/Dockerfile", "Dockerfile.evil", "in/up", "in/up/"]
)
def test_dockerfile_path_escaping_through_symlink_refused(
    repo_with_links: Path, work: Path, dockerfile_path: str
) -> None:
    source = GitSource("git", str(repo_with_links), dockerfile_path, tmpdir=work)
    with pytest.raises(SourceError, match="points outside the source") as info:
        source.get_dockerfile_path()
    assert not isinstance(info.value, DockerfileError)


def test_dockerfile_missing(tree: Path, work: Path) -> None:
    (tree / "empty").mkdir()
    (tree / "empty" / "keep").write_text("")
    (tree / "Dockerfile").unlink()
    cases = {
        "./": "no Dockerfile at Dockerfile in the source",
        "empty": "no Dockerfile at empty/Dockerfile in the source",
        "nodir/": "no Dockerfile at nodir/Dockerfile in the source",
        "sub/Nope": "no Dockerfile at sub/Nope in the source",
    }
    with PathSource("path", tree.as_uri(), tmpdir=work) as source:
        for dockerfile_path, message in cases.items():
            source.dockerfile_path = dockerfile_path
            with pytest.raises(DockerfileError) as info:
                source.get_dockerfile_path()
            assert str(info.value) == message


def test_dockerfile_is_a_directory(tree: Path, work: Path) -> None:
    (tree / "sub" / "Dockerfile").unlink()
    (tree / "sub" / "Dockerfile").mkdir()
    source = PathSource("path", tree.as_uri(), "sub", tmpdir=work)
    with pytest.raises(DockerfileError, match="is not a file"):
        source.get_dockerfile_path()


# -- lifetime -----------------------------------------------------------------------------


def test_cleanup_removes_owned_tmpdir(tree: Path) -> None:
    source = PathSource("path", tree.as_uri())
    tmpdir = source.tmpdir
    assert os.path.basename(tmpdir).startswith("atomic-reactor-source-")
    try:
        assert Path(source.path).is_relative_to(Path(tmpdir).resolve())
    finally:
        source.cleanup()
    assert not os.path.exists(tmpdir)
    source.cleanup()  # idempotent
    with pytest.raises(SourceError, match="cleaned up"):
        _ = source.path


def test_cleanup_unfetched_source(repo: Repo) -> None:
    source = GitSource("git", str(repo.path))
    assert os.path.isdir(source.tmpdir)
    source.cleanup()
    assert not os.path.exists(source.tmpdir)


def test_cleanup_keeps_a_given_tmpdir(repo: Repo, work: Path) -> None:
    (work / "other").write_text("not ours")
    with git_source(repo, work) as source:
        root = source.path
        assert os.path.isdir(root)
    assert not os.path.exists(root)
    assert sorted(p.name for p in work.iterdir()) == ["other"]


def test_cleanup_removes_a_tmpdir_it_created(tree: Path, tmp_path: Path) -> None:
    tmpdir = tmp_path / "new" / "dir"
    with PathSource("path", str(tree), tmpdir=tmpdir) as source:
        assert source.tmpdir == str(tmpdir)
        _ = source.path
    assert not tmpdir.exists()


def test_cleanup_handles_read_only_copies(tree: Path, work: Path) -> None:
    (tree / "ro" / "deep").mkdir(parents=True)
    (tree / "ro" / "deep" / "f").write_text("x")
    (tree / "ro" / "deep").chmod(stat.S_IRUSR | stat.S_IXUSR)
    (tree / "ro").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with PathSource("path", tree.as_uri(), tmpdir=work) as source:
            assert Path(source.path, "ro", "deep", "f").exists()
        assert list(work.iterdir()) == []
    finally:
        (tree / "ro").chmod(stat.S_IRWXU)
        (tree / "ro" / "deep").chmod(stat.S_IRWXU)


def test_cleanup_of_git_checkout(repo: Repo) -> None:
    with git_source(repo, repo.path.parent / "w") as source:
        _ = source.path
    assert not (repo.path.parent / "w").exists()


def test_exception_in_with_block_propagates(tree: Path, work: Path) -> None:
    with pytest.raises(RuntimeError), PathSource("path", str(tree), tmpdir=work) as source:
        _ = source.path
        raise RuntimeError("boom")
    assert list(work.iterdir()) == []


# -- SourceSpec ----------------------------------------------------------------------------


def test_spec_from_dict_defaults() -> None:
    spec = SourceSpec.from_dict({"provider": "git", "uri": "https://example.com/r.git"})
    assert spec == SourceSpec("git", "https://example.com/r.git", "./", {})
    assert spec.to_dict() == {
        "provider": "git",
        "uri": "https://example.com/r.git",
        "dockerfile_path": "./",
        "provider_params": {},
    }


def test_spec_none_means_default() -> None:
    spec = SourceSpec.from_dict(
        {"provider": "path", "uri": "file:///x", "dockerfile_path": None, "provider_params": None}
    )
    assert spec.dockerfile_path == "./"
    assert dict(spec.provider_params) == {}


def test_spec_round_trip_and_immutability() -> None:
    data = {
        "provider": "git",
        "uri": "https://example.com/r.git",
        "dockerfile_path": "sub/Dockerfile",
        "provider_params": {"git_commit": "main"},
    }
    spec = SourceSpec.from_dict(data)
    assert spec.to_dict() == data
    assert SourceSpec.from_dict(spec.to_dict()) == spec
    data["provider_params"]["git_commit"] = "other"  # type: ignore[index]
    assert spec.provider_params["git_commit"] == "main"
    with pytest.raises(FrozenInstanceError):
        spec.uri = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.provider_params["git_commit"] = "x"  # type: ignore[index]
    out = spec.to_dict()
    out["provider_params"]["git_commit"] = "mutated"
    assert spec.provider_params["git_commit"] == "main"
    assert hash(spec) == hash(SourceSpec.from_dict(spec.to_dict()))
    assert copy.deepcopy(spec) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (["provider", "git"], "source must be a mapping, got list"),
        (None, "source must be a mapping, got NoneType"),
        (
            {"provider": "git", "uri": "u", "branch": "x", "depth": 1},
            "unknown source key(s): 'branch', 'depth'",
        ),
        ({"provider": "svn", "uri": "u"}, "unknown source provider 'svn'"),
        ({"uri": "u"}, "source has no 'provider'"),
        ({"provider": "git"}, "source has no 'uri'"),
        ({"provider": "git", "uri": ""}, "source 'uri' is empty"),
        ({"provider": "git", "uri": "   "}, "source 'uri' is empty"),
        ({"provider": 1, "uri": "u"}, "source 'provider' must be a string, got int"),
        ({"provider": "git", "uri": 5}, "source 'uri' must be a string, got int"),
        (
            {"provider": "git", "uri": "u", "dockerfile_path": 3},
            "source 'dockerfile_path' must be a string, got int",
        ),
        (
            {"provider": "git", "uri": "u", "provider_params": ["x"]},
            "source 'provider_params' must be a mapping, got list",
        ),
        (
            {"provider": "git", "uri": "u", "provider_params": {"git_commit": 1}},
            "provider_params 'git_commit' must be a string, got int",
        ),
        (
            {"provider": "git", "uri": "u", "provider_params": {"git_branch": "x"}},
            "unknown provider_params for provider 'git': 'git_branch'",
        ),
        (
            {"provider": "path", "uri": "file:///x", "provider_params": {"git_commit": "x"}},
            "unknown provider_params for provider 'path': 'git_commit' (it takes none)",
        ),
        ({"provider": "git", "uri": "a\0b"}, "source 'uri' contains a NUL character"),
    ],
)
def test_spec_validation(source: Any, message: str) -> None:
    with pytest.raises(SourceError) as info:
        SourceSpec.from_dict(source)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, InputError)


def test_spec_constructor_validates() -> None:
    with pytest.raises(SourceError, match="unknown source provider"):
        SourceSpec("hg", "u")


# -- factory and base class ------------------------------------------------------------------


def test_get_source_instance_for(repo: Repo, tree: Path, work: Path) -> None:
    git_src = get_source_instance_for(
        {"provider": "git", "uri": str(repo.path), "provider_params": {"git_commit": "v1"}},
        tmpdir=work,
    )
    assert isinstance(git_src, GitSource)
    assert git_src.provider_params == {"git_commit": "v1"}
    assert git_src.tmpdir == str(work)
    assert git_src.get_vcs_info() == VcsInfo("git", str(repo.path), repo.c1)

    spec = SourceSpec("path", tree.as_uri(), "sub")
    path_src = get_source_instance_for(spec, tmpdir=work)
    assert isinstance(path_src, PathSource)
    assert path_src.spec == spec
    assert Path(path_src.get_dockerfile_path()[0]).read_text() == "FROM sub\n"


def test_get_source_instance_for_invalid(work: Path) -> None:
    with pytest.raises(SourceError, match="unknown source provider"):
        get_source_instance_for({"provider": "hg", "uri": "x"}, tmpdir=work)


def test_wrong_provider_for_class(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="GitSource handles provider 'git', not 'path'"):
        GitSource("path", "file:///x", tmpdir=tmp_path)
    with pytest.raises(SourceError, match="unknown source provider"):
        PathSource("ftp", "x", tmpdir=tmp_path)


def test_invalid_arguments_create_no_tmpdir(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> str:
        raise AssertionError("mkdtemp called")

    monkeypatch.setattr("tempfile.mkdtemp", fail)
    with pytest.raises(SourceError):
        GitSource("git", "")


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        Source("git", "x")  # type: ignore[abstract]


def test_custom_source_subclass(tree: Path, work: Path) -> None:
    class Fixed(Source):
        def get(self) -> str:
            return str(tree)

    source = Fixed("path", "file:///ignored", "sub", tmpdir=work)
    assert source.path == str(tree)
    assert source.get_dockerfile_path()[0] == str(tree / "sub" / "Dockerfile")
    assert source.get_vcs_info() is None
    source.cleanup()
    assert tree.exists()  # not created by the source: left alone


def test_git_fetch_timeout(work: Path) -> None:
    # a server that accepts connections and never answers
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        source = git_source(f"http://127.0.0.1:{port}/repo.git", work, "main")
        source.timeout = 1.0
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"git fetch timed out after 1s fetching http://"):
            source.get()
        assert time.monotonic() - started < 30
    assert list(work.iterdir()) == []


def test_git_ext_transport_refused(tmp_path: Path, work: Path) -> None:
    marker = tmp_path / "pwned"
    source = git_source(f"ext::sh -c touch% {marker}", work, "main")
    with pytest.raises(SourceError, match="cannot fetch git repository ext::"):
        source.get()
    assert not marker.exists()
