"""One git repository per entity: every version is a commit, tags name versions.

Files are written through the git index of a bare repository, so there is no working tree that a
user or a run could modify behind the store's back.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import git
from gitdb import GitDB
from gitdb.base import IStream
from gitdb.exc import BadObject
from git.index.typ import BaseIndexEntry

from ..errors import InvalidInput, StaleVersion

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,200}$")
MAX_FILE_BYTES = 50 * 1024 * 1024
_NO_COMMIT = "0" * 40


def check_file_name(name: str) -> str:
    """Refuse names that could escape the repository or touch git's own files."""
    path = PurePosixPath(name)
    parts = path.parts
    if not parts or path.is_absolute() or "\\" in name:
        raise InvalidInput(f"file name {name!r} is not a plain relative path")
    for part in parts:
        if part in (".", "..") or part.lower() == ".git" or part.startswith(".") \
                or not _SAFE_NAME.match(part):
            raise InvalidInput(
                f"file name {name!r} is not allowed: use letters, digits, '_', '-', '.' and spaces, "
                "no hidden files and no '..'")
    return str(path)


def check_tag_name(name: str) -> str:
    """Refuse tag names that git would refuse, before anything is saved."""
    check_file_name(name)
    try:
        git.Git().check_ref_format(f"refs/tags/{name}")
    except git.GitCommandError:
        raise InvalidInput(f"{name!r} is not a valid tag name (git refuses it; avoid spaces, '..' "
                           "and a trailing '.lock')") from None
    return name


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    message: str
    author: str
    created_at: datetime


LABKIT_EMAIL_DOMAIN = "@labkit.local"  # of the author of every commit the store makes
UNRECORDED_PREFIX = "unrecorded/"  # branches keeping commits of interrupted saves (labkit.doctor)
_TRAILER = re.compile(r"^Labkit-([A-Za-z-]+): (.*)$")


def with_trailers(message: str, fields: dict[str, str | None]) -> str:
    """A commit message that also carries what the database records about the version (main file,
    visibility, a dataset's protocol), so that a commit whose save was cut before its database row
    can be recorded later exactly as the save meant to (labkit.doctor)."""
    lines = [f"Labkit-{key}: {value}" for key, value in fields.items() if value]
    return message.rstrip("\n") + ("\n\n" + "\n".join(lines) if lines else "") + "\n"


def split_trailers(message: str) -> tuple[str, dict[str, str]]:
    """(the message as the user wrote it, the Labkit-* trailers) of a commit message."""
    text, _, last = message.rstrip("\n").rpartition("\n\n")
    matches = [_TRAILER.match(line) for line in last.splitlines()]
    if not text or not matches or not all(matches):
        return message.strip(), {}
    return text.strip(), {m[1]: m[2].strip() for m in matches if m}


class EntityRepository:
    """A bare git repository holding every version of one entity."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path) -> "EntityRepository":
        path.parent.mkdir(parents=True, exist_ok=True)
        git.Repo.init(path, bare=True, initial_branch="main")
        return cls(path)

    @property
    def _repo(self) -> git.Repo:
        return git.Repo(self.path)

    def head(self) -> str | None:
        """The latest commit, or None for an empty repository."""
        try:
            return self._repo.head.commit.hexsha
        except ValueError:
            return None

    def commit(self, files: dict[str, bytes], *, message: str, author: str, email: str,
               base: str | None) -> CommitInfo:
        """Commit ``files`` on top of ``base`` (its tree carried forward) and move ``main`` to it."""
        repo = self._repo
        index = git.IndexFile(repo)  # in-memory index, filled from base
        if base is not None:
            index = git.IndexFile.from_tree(repo, base)
        entries = []
        for name, content in files.items():
            if len(content) > MAX_FILE_BYTES:
                raise InvalidInput(f"{name} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            istream = repo.odb.store(IStream("blob", len(content), io.BytesIO(content)))
            entries.append(BaseIndexEntry((0o100644, istream.binsha, 0, check_file_name(name))))
        index.add(entries, write=False)
        tree = index.write_tree()
        actor = git.Actor(author, email)
        parents = [repo.commit(base)] if base else []
        commit = git.Commit.create_from_tree(repo, tree, message, parent_commits=parents,
                                             head=False, author=actor, committer=actor)
        try:  # compare-and-swap: a first commit requires that ``main`` does not exist yet
            repo.git.update_ref("refs/heads/main", commit.hexsha, base or _NO_COMMIT)
        except git.GitCommandError:
            raise StaleVersion(f"{self.path.name}: another version was saved at the same time; "
                               "reload and try again") from None
        return self.info(commit.hexsha)

    def parent_of(self, sha: str) -> str | None:
        """The first parent of commit ``sha`` (None for a first commit)."""
        parents = self._repo.commit(sha).parents
        return parents[0].hexsha if parents else None

    def made_by_labkit(self, sha: str) -> bool:
        """Was commit ``sha`` written by labkit's store (its authors are ``<user>@labkit.local``),
        rather than by someone committing into the repository by hand?"""
        return str(self._repo.commit(sha).author.email).endswith(LABKIT_EMAIL_DOMAIN)

    def keep(self, sha: str) -> str:
        """Keep commit ``sha`` on a branch of its own (``unrecorded/<sha>``) before ``main`` leaves it,
        so an interrupted save's work is never left to git's garbage collection; returns the branch."""
        branch = f"{UNRECORDED_PREFIX}{sha[:12]}"
        self._repo.git.update_ref(f"refs/heads/{branch}", sha)
        return branch

    def unrecorded_branches(self) -> dict[str, str]:
        """Branch name -> commit of every ``unrecorded/`` branch (see ``keep``), read from the ref
        files without starting git: labkit.doctor reads this for every entity at start-up."""
        refs = {}
        loose = self.path / "refs" / "heads" / UNRECORDED_PREFIX.rstrip("/")
        packed = self.path / "packed-refs"
        if packed.exists():  # after a `git gc`
            for line in packed.read_text().splitlines():
                sha, _, ref = line.partition(" ")
                if ref.startswith(f"refs/heads/{UNRECORDED_PREFIX}"):
                    refs[ref.removeprefix("refs/heads/")] = sha
        if loose.is_dir():
            for file in loose.iterdir():
                refs[f"{UNRECORDED_PREFIX}{file.name}"] = file.read_text().strip()
        return refs

    def main_sha(self) -> str | None:
        """The commit ``main`` names (None before the first one), read from the ref files without
        starting git (``head`` asks git's object store and starts a process)."""
        try:
            return git.SymbolicReference.dereference_recursive(self._repo, "refs/heads/main")
        except (ValueError, OSError):
            return None

    def has_commit(self, sha: str) -> bool:
        """Does the repository hold commit ``sha`` (read from git's object store, no git process)?"""
        try:
            return GitDB(str(self.path / "objects")).info(bytes.fromhex(sha)).type == b"commit"
        except (ValueError, OSError, KeyError, BadObject):
            return False

    def reset_main(self, sha: str | None, *, expected: str) -> None:
        """Undo our commit ``expected`` whose metadata could not be saved (only if still the head)."""
        repo = self._repo
        try:
            if sha is None:
                repo.git.update_ref("-d", "refs/heads/main", expected)
            else:
                repo.git.update_ref("refs/heads/main", sha, expected)
        except git.GitCommandError:
            pass  # main has moved on since: that commit is someone else's, not ours to undo

    def info(self, sha: str) -> CommitInfo:
        c = self._repo.commit(sha)
        return CommitInfo(c.hexsha, str(c.message), c.author.name or "", c.authored_datetime)

    def files(self, sha: str) -> list[str]:
        tree = self._repo.commit(sha).tree
        return sorted(b.path for b in tree.traverse() if b.type == "blob")

    def read(self, sha: str, name: str) -> bytes:
        try:
            blob = self._repo.commit(sha).tree / name
        except KeyError:
            raise InvalidInput(f"version {sha[:10]} has no file {name!r}") from None
        return blob.data_stream.read()

    def export(self, sha: str, dest: Path) -> list[Path]:
        """Write every file of a version into ``dest`` (a run's scratch folder)."""
        written = []
        for name in self.files(sha):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.read(sha, name))
            written.append(target)
        return written

    def tag(self, sha: str, name: str) -> None:
        try:
            self._repo.create_tag(name, ref=sha, force=True)
        except git.GitCommandError:
            raise InvalidInput(f"{name!r} is not a valid tag name (git refuses it; avoid spaces, '..' "
                               "and a trailing '.lock')") from None
