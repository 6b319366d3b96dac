"""Versions in git, metadata in SQL: saving, reading back, tags, version references, stale saves,
file names. Real SQLite, real git repositories."""
from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import TT06, git, git_blob, lab_state

import labkit
from labkit.errors import InvalidInput, NotFound, StaleVersion
from labkit.store.repos import MAX_FILE_BYTES, EntityRepository


@pytest.fixture
def two_versions(lab: labkit.Lab, models_dir: Path) -> tuple[bytes, bytes, labkit.SaveResult, labkit.SaveResult]:
    """tt06 v1 from the published file, v2 the same file with a changed comment."""
    original = (models_dir / TT06).read_bytes()
    changed = original.replace(b"<model ", b"<!-- v2: a reviewed copy -->\n<model ", 1)
    assert changed != original
    first = lab.add_model(models_dir / TT06, name="tt06", message="as published")
    second = lab.add_model({TT06: changed}, name="tt06", message="reviewed")
    return original, changed, first, second


def repo_of(lab: labkit.Lab, kind: str, name: str) -> Path:
    return lab.settings.repositories / f"{kind}s" / f"{name}.git"


# -- saving and reading back ------------------------------------------------------------------------
def test_two_versions_are_kept_byte_for_byte_as_two_git_commits(lab: labkit.Lab, two_versions) -> None:
    original, changed, first, second = two_versions
    v1, v2 = first.version, second.version
    assert (v1.number, v2.number) == (1, 2)
    assert v1.commit != v2.commit and len(v1.commit) == len(v2.commit) == 40
    assert (v1.main_file, v2.main_file) == (TT06, TT06)
    assert (v1.message.strip(), v2.message.strip()) == ("as published", "reviewed")
    assert lab.read_file("model", "tt06", 1) == original
    assert lab.read_file("model", "tt06", 2) == changed
    assert lab.read_file("model", "tt06") == changed  # latest by default
    assert lab.read_file("model", "tt06", 1, TT06) == original
    assert [v.number for v in lab.versions("model", "tt06")] == [1, 2]
    assert lab.names("model") == ["tt06"]

    repo = repo_of(lab, "model", "tt06")
    assert git(repo, "rev-list", "--count", "main") == "2"
    assert git(repo, "rev-parse", "main") == v2.commit
    assert git(repo, "rev-parse", "main^") == v1.commit  # v2 is built on v1


def test_the_git_blob_is_exactly_the_uploaded_file(lab: labkit.Lab, two_versions) -> None:
    original, changed, first, second = two_versions
    repo = repo_of(lab, "model", "tt06")
    for version, data in ((first.version, original), (second.version, changed)):
        assert git_blob(repo, version.commit, TT06) == data
    assert lab.files("model", "tt06", 1) == [TT06]


def test_a_repository_has_no_working_tree_to_tamper_with(lab: labkit.Lab, two_versions) -> None:
    repo = repo_of(lab, "model", "tt06")
    assert git(repo, "rev-parse", "--is-bare-repository") == "true"
    assert not (repo / TT06).exists()


def test_adding_a_file_keeps_the_main_file_and_makes_a_version_with_both(lab: labkit.Lab, two_versions) -> None:
    _, changed, _, second = two_versions
    notes = b"Checked against the paper's figure 3.\n"
    lab.add_user("alice")
    lab.share("model", "tt06", "alice")  # a collaborator may add versions
    v3 = lab.store.save("model", "tt06", {"notes.txt": notes}, author="alice", message="notes",
                        parent=second.version.commit)
    assert v3.number == 3 and v3.main_file == TT06 and v3.author == "alice"
    assert lab.files("model", "tt06", 3) == sorted(["notes.txt", TT06])
    assert lab.read_file("model", "tt06", 3) == changed
    assert lab.read_file("model", "tt06", 3, "notes.txt") == notes
    assert lab.files("model", "tt06", 2) == [TT06]  # the older version is untouched
    assert lab.annotations("tt06", 3) == lab.annotations("tt06", 2)  # the main file is re-indexed
    assert git(repo_of(lab, "model", "tt06"), "rev-list", "--count", "main") == "3"


def test_a_new_entity_needs_its_main_file(lab: labkit.Lab) -> None:
    before = lab_state(lab)
    with pytest.raises(InvalidInput, match="main model file"):
        lab.add_model({"notes.txt": b"no model here"}, name="empty")
    with pytest.raises(InvalidInput, match=r"must end in \.cellml"):
        lab.store.save("model", "empty", {"notes.txt": b"x"}, author="a", main_file="notes.txt")
    assert lab_state(lab) == before


def test_an_oversized_file_is_refused_before_a_repository_is_made(lab: labkit.Lab, models_dir: Path) -> None:
    before = lab_state(lab)
    with pytest.raises(InvalidInput, match="larger than 50 MiB"):
        lab.add_model({TT06: (models_dir / TT06).read_bytes(), "big.bin": b"0" * (MAX_FILE_BYTES + 1)},
                      name="big")
    assert lab_state(lab) == before
    assert not repo_of(lab, "model", "big").exists()


# -- tags ---------------------------------------------------------------------------------------------
def test_a_tag_names_a_version_in_sql_and_in_git(lab: labkit.Lab, two_versions) -> None:
    _, _, first, second = two_versions
    tagged = lab.tag("model", "tt06", 1, "published")
    assert tagged.number == 1 and tagged.tags == ("published",)
    assert lab.version("model", "tt06", "published").commit == first.version.commit
    assert lab.read_file("model", "tt06", "published") == lab.read_file("model", "tt06", 1)
    assert git(repo_of(lab, "model", "tt06"), "rev-parse", "published^{commit}") == first.version.commit
    assert lab.version("model", "tt06", 2).tags == ()


def test_a_duplicate_tag_is_refused_and_stays_where_it_was(lab: labkit.Lab, two_versions) -> None:
    _, _, first, _ = two_versions
    lab.tag("model", "tt06", 1, "published")
    before = lab_state(lab)
    with pytest.raises(InvalidInput, match=r"already has a tag 'published' \(on v1\)"):
        lab.tag("model", "tt06", 2, "published")
    assert lab_state(lab) == before
    assert lab.version("model", "tt06", "published").number == 1
    assert git(repo_of(lab, "model", "tt06"), "rev-parse", "published^{commit}") == first.version.commit
    assert lab.tag("model", "tt06", 2, "reviewed").tags == ("reviewed",)  # another name is fine


def test_saving_with_a_tag(lab: labkit.Lab, models_dir: Path) -> None:
    saved = lab.add_model(models_dir / TT06, name="tt06", tag="v1.0-paper")
    assert saved.version.tags == ("v1.0-paper",)
    assert lab.version("model", "tt06", "v1.0-paper").number == 1


def test_a_tag_that_reads_as_a_version_reference_is_refused(lab: labkit.Lab, two_versions) -> None:
    before = lab_state(lab)
    for tag in ["v2", "7", "latest"]:
        with pytest.raises(InvalidInput, match="version number or 'latest'"):
            lab.tag("model", "tt06", 1, tag)
    assert lab_state(lab) == before
    assert lab.version("model", "tt06", "v2").number == 2


def test_a_tag_git_cannot_hold_is_refused_as_invalid_input(lab: labkit.Lab, two_versions) -> None:
    before = lab_state(lab)
    for tag in ["my tag", "a..b", "x.lock", ".hidden", "../up", "a/b/../c", ""]:
        with pytest.raises(InvalidInput):
            lab.tag("model", "tt06", 1, tag)
    assert lab_state(lab) == before


# -- version references -------------------------------------------------------------------------------
def test_a_version_resolves_by_number_v_number_commit_prefix_tag_and_latest(lab: labkit.Lab, two_versions) -> None:
    _, _, first, second = two_versions
    lab.tag("model", "tt06", 1, "published")
    c1, c2 = first.version.commit, second.version.commit
    for ref, number in [(1, 1), ("1", 1), (2, 2), ("v1", 1), ("v2", 2), (" v2 ", 2), ("latest", 2),
                        (c1, 1), (c2, 2), (c1[:7], 1), (c2[:4], 2), ("published", 1)]:
        assert lab.version("model", "tt06", ref).number == number, ref
    assert lab.version("model", "tt06").commit == c2


def test_an_unknown_version_is_not_found_with_a_helpful_message(lab: labkit.Lab, two_versions) -> None:
    lab.tag("model", "tt06", 1, "published")
    for ref in [3, "v3", "0", "vv2", "nope", "deadbeef", "abc", ""]:
        with pytest.raises(NotFound) as err:
            lab.version("model", "tt06", ref)
        message = str(err.value)
        assert message == f"model tt06 has no version {str(ref)!r}; it has v1, v2 and tags ['published']"
        with pytest.raises(NotFound):
            lab.read_file("model", "tt06", ref)


def test_an_unknown_entity_is_not_found_and_says_where_to_look(lab: labkit.Lab, two_versions) -> None:
    with pytest.raises(NotFound, match=r"there is no model called 'tt07'.*labkit list models"):
        lab.version("model", "tt07")
    with pytest.raises(NotFound, match="no protocol called 'tt06'"):  # names are per kind
        lab.versions("protocol", "tt06")
    with pytest.raises(InvalidInput, match="unknown entity kind"):
        lab.names("models")


def test_a_missing_file_of_a_version_is_refused(lab: labkit.Lab, two_versions) -> None:
    with pytest.raises(InvalidInput, match="has no file 'notes.txt'"):
        lab.read_file("model", "tt06", 1, "notes.txt")
    with pytest.raises(InvalidInput):
        lab.read_file("model", "tt06", 1, "../../labkit.sqlite")


# -- stale saves ----------------------------------------------------------------------------------------
def test_a_save_based_on_an_old_version_is_refused_and_changes_nothing(lab: labkit.Lab, two_versions) -> None:
    original, _, first, second = two_versions
    repo = repo_of(lab, "model", "tt06")
    before = lab_state(lab)
    edited = original.replace(b"<model ", b"<!-- someone else's edit -->\n<model ", 1)
    for parent in (first.version.commit, first.version.commit[:10]):
        with pytest.raises(StaleVersion) as err:
            lab.add_model({TT06: edited}, name="tt06", parent=parent)
        assert f"v2 ({second.version.commit[:10]})" in str(err.value)
        assert "Re-open the latest version" in str(err.value)
    assert lab_state(lab) == before
    assert len(lab.versions("model", "tt06")) == 2
    assert git(repo, "rev-parse", "main") == second.version.commit
    assert git(repo, "rev-list", "--count", "main") == "2"


def test_a_save_based_on_the_latest_version_is_accepted(lab: labkit.Lab, two_versions) -> None:
    original, _, _, second = two_versions
    edited = original.replace(b"<model ", b"<!-- v3 -->\n<model ", 1)
    v3 = lab.add_model({TT06: edited}, name="tt06", parent=second.version.commit).version
    assert v3.number == 3 and lab.read_file("model", "tt06", 3) == edited
    v4 = lab.add_model({TT06: original}, name="tt06", parent=v3.commit[:8]).version  # a prefix will do
    assert v4.number == 4 and lab.read_file("model", "tt06") == original
    assert git(repo_of(lab, "model", "tt06"), "rev-list", "--count", "main") == "4"


def test_a_parent_too_short_to_name_a_commit_is_refused(lab: labkit.Lab, two_versions) -> None:
    original = two_versions[0]
    before = lab_state(lab)
    for parent in ["", "  ", "a", two_versions[3].version.commit[:3]]:
        with pytest.raises(InvalidInput, match="give at least 4 characters"):
            lab.add_model({TT06: original}, name="tt06", parent=parent)
    assert lab_state(lab) == before


def test_a_repository_moved_behind_the_store_is_refused(lab: labkit.Lab, two_versions, models_dir: Path) -> None:
    """Someone committed straight into the bare repository: the store will not build on top of it."""
    original, _, _, second = two_versions
    repo = EntityRepository(repo_of(lab, "model", "tt06"))
    rogue = repo.commit({"rogue.txt": b"x"}, message="rogue", author="r", email="r@x", base=second.version.commit)
    with pytest.raises(StaleVersion, match="moved on"):
        lab.add_model({TT06: original}, name="tt06")
    assert len(lab.versions("model", "tt06")) == 2 and repo.head() == rogue.sha


def test_the_git_branch_moves_only_by_compare_and_swap(tmp_path: Path) -> None:
    repo = EntityRepository.create(tmp_path / "x.git")
    assert repo.head() is None
    first = repo.commit({"a.txt": b"1"}, message="one", author="a", email="a@x", base=None)
    assert repo.head() == first.sha
    with pytest.raises(StaleVersion):  # a second "first" commit must not replace the first
        repo.commit({"a.txt": b"other"}, message="race", author="b", email="b@x", base=None)
    second = repo.commit({"b.txt": b"2"}, message="two", author="a", email="a@x", base=first.sha)
    with pytest.raises(StaleVersion):  # built on a commit that is no longer the head
        repo.commit({"c.txt": b"3"}, message="late", author="b", email="b@x", base=first.sha)
    assert repo.head() == second.sha and repo.files(second.sha) == ["a.txt", "b.txt"]
    repo.reset_main(None, expected=first.sha)  # not ours any more: left alone
    assert repo.head() == second.sha
    repo.reset_main(first.sha, expected=second.sha)
    assert repo.head() == first.sha


# -- file and entity names --------------------------------------------------------------------------
UNSAFE_FILE_NAMES = ["..", "../evil.txt", "a/../../evil.txt", "/abs.txt", "/etc/passwd", ".git/config", ".git",
                     "sub/.git/hooks/pre-commit", ".hidden", "sub/.hidden", "back\\slash.txt", "-flag", "",
                     "a" * 300]


def test_unsafe_file_names_are_refused_and_nothing_is_stored(lab: labkit.Lab, models_dir: Path) -> None:
    good = (models_dir / TT06).read_bytes()
    lab.add_model({TT06: good}, name="existing")
    before = lab_state(lab)
    for bad in UNSAFE_FILE_NAMES:
        with pytest.raises(InvalidInput, match="file name"):
            lab.add_model({TT06: good, bad: b"payload"}, name="fresh")
        with pytest.raises(InvalidInput, match="file name"):
            lab.add_model({TT06: good, bad: b"payload"}, name="existing")
        with pytest.raises(InvalidInput, match="file name"):
            lab.store.save("model", "existing", {bad: b"payload"}, author="a")
    assert lab_state(lab) == before
    assert not (lab.settings.repositories / "models" / "fresh.git").exists()
    assert not (lab.settings.root / "evil.txt").exists() and not Path("/abs.txt").exists()


def test_unsafe_entity_names_are_refused(lab: labkit.Lab, models_dir: Path) -> None:
    before = lab_state(lab)
    for bad in ["../evil", "a/b", ".git", ".hidden", "/abs", ""]:
        with pytest.raises(InvalidInput):
            lab.add_model({TT06: (models_dir / TT06).read_bytes()}, name=bad)
    assert lab_state(lab) == before
    assert not any(lab.settings.root.parent.glob("*.git")) and not (lab.settings.root / "evil.git").exists()


def test_a_refused_tag_leaves_no_new_version_behind(lab, models_dir) -> None:
    import labkit
    path = models_dir / "ten_tusscher_model_2006_epi.cellml"
    lab.add_model(path, name="tt06", tag="published")
    changed = path.read_bytes().replace(b"</model>", b"<!-- v2 --></model>")
    with pytest.raises(labkit.InvalidInput, match="already has a tag 'published'"):
        lab.add_model({"ten_tusscher_model_2006_epi.cellml": changed}, name="tt06", tag="published")
    with pytest.raises(labkit.InvalidInput, match="not a valid tag name"):
        lab.add_model({"ten_tusscher_model_2006_epi.cellml": changed}, name="tt06", tag="bad..tag")
    assert [v.number for v in lab.versions("model", "tt06")] == [1]


def test_an_all_digit_commit_prefix_still_resolves(lab, models_dir) -> None:
    path = models_dir / "ten_tusscher_model_2006_epi.cellml"
    lab.add_model(path, name="tt06")
    # A commit's first four hex digits are all decimal with chance (10/16)**4 = 0.15: 200 tries fail with
    # chance 0.85**200 = 5e-15 (40 tries failed once in CI: 1.3e-3), and about 7 are made on average.
    for i in range(200):  # make versions until one's commit starts with four digits
        content = path.read_bytes().replace(b"</model>", f"<!-- {i} --></model>".encode())
        v = lab.add_model({path.name: content}, name="tt06").version
        if v.commit[:4].isdigit():
            assert lab.version("model", "tt06", v.commit[:4]).number == v.number
            assert lab.version("model", "tt06", 1).number == 1  # small numbers stay version numbers
            return
    raise AssertionError("no commit with an all-digit prefix in 200 tries (chance about 5e-15)")


def test_a_version_without_files_in_the_database_is_recorded_from_its_repository_when_fetched(
        lab: labkit.Lab, models_dir: Path, tmp_path: Path) -> None:
    from labkit.store import orm
    from labkit.store.entities import EntityStore

    content = (models_dir / TT06).read_bytes()
    saved = lab.add_model(models_dir / TT06, name="tt06").version
    with lab.db.session() as s:  # as a labkit from before version files were kept left it
        s.query(orm.VersionFile).filter(orm.VersionFile.version_id == saved.id).delete()
    elsewhere = EntityStore(lab.db, tmp_path / "no-repositories")  # a worker on another machine
    with pytest.raises(labkit.NotFound, match="not in the database"):
        elsewhere.fetch(saved, tmp_path / "remote")
    main = lab.store.fetch(saved, tmp_path / "local")  # shares the lab's storage: records them
    assert main.read_bytes() == content
    assert elsewhere.fetch(saved, tmp_path / "remote").read_bytes() == content
