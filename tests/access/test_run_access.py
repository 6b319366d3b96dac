"""Runs without workers (they stay queued): who may start, see, list, wait on and cancel them. A run of
a private model is private: for an outsider it does not exist."""
from __future__ import annotations

from access_helpers import OUTSIDER, World, error_of, lab_state

import labkit


def test_a_run_of_a_private_model_is_private_and_missing_for_an_outsider(fresh: World) -> None:
    run = fresh.owner.run("secret", "test")
    assert (run.status, run.visibility, run.created_by) == ("queued", "private", fresh.owner.user)
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (fresh.outsider.status, fresh.outsider.cancel, fresh.outsider.prediction,
                 lambda r: fresh.outsider.wait([r], timeout=5)):
        assert error_of(lambda: call(run.id)).replace(run.id, "ID") == error_of(lambda: call(missing)).replace(missing, "ID")
    assert fresh.outsider.runs() == [] and fresh.outsider.runs(model="secret") == []
    assert fresh.collaborator.status(run.id).id == run.id
    assert [r.id for r in fresh.collaborator.runs()] == [run.id] == [r.id for r in fresh.owner.runs()]
    assert [r.id for r in fresh.moderator.runs()] == [run.id]


def test_a_run_takes_the_most_restrictive_visibility_of_its_inputs(fresh: World) -> None:
    public = fresh.owner.run("open", "test", model_version=1)
    assert public.visibility == "public"
    fresh.moderator.set_visibility("model", "open", 1, "moderated")
    assert fresh.owner.status(public.id).visibility == "public"  # the protocol is only public
    fresh.moderator.set_visibility("protocol", "test", 1, "moderated")
    assert fresh.outsider.status(public.id).visibility == "moderated"
    draft = fresh.owner.run("open", "test")  # v2 is private
    assert draft.visibility == "private"
    assert [r.id for r in fresh.outsider.runs()] == [public.id]
    fresh.owner.set_visibility("model", "open", 1, "private")  # hiding an input hides its runs
    assert fresh.outsider.runs() == []


def test_anyone_who_reads_both_versions_may_run_them(fresh: World) -> None:
    before = lab_state(fresh.owner)
    hidden = error_of(lambda: fresh.outsider.run("secret", "test"))
    assert hidden == error_of(lambda: fresh.outsider.run("no_such_model", "test")).replace("no_such_model", "secret")
    assert error_of(lambda: fresh.collaborator.run("open", "hidden_protocol")) == \
        "there is no protocol called 'hidden_protocol'; `labkit list protocols` shows what there is"
    assert lab_state(fresh.owner) == before
    mine = fresh.outsider.run("open", "test")
    assert (mine.model_version, mine.created_by) == (1, OUTSIDER)  # the latest version they may read
    assert fresh.collaborator.run("secret", "test").status == "queued"


def test_a_version_id_from_elsewhere_does_not_get_past_the_check(fresh: World) -> None:
    """Experiments.submit takes VersionInfo objects; one the user may not read is refused there too."""
    secret = fresh.owner.version("model", "secret")
    protocol = fresh.outsider.version("protocol", "test")
    before = lab_state(fresh.owner)
    assert "there is no model called 'secret'" in error_of(lambda: fresh.outsider.experiments.submit(secret, protocol))
    assert "there is no model called 'secret'" in error_of(
        lambda: fresh.outsider.experiments.compatibility(secret, protocol))
    assert lab_state(fresh.owner) == before


def test_run_matrix_and_planned_experiments_cover_only_readable_pairs(fresh: World) -> None:
    runs = fresh.outsider.run_matrix(only_compatible=False)
    assert {(r.model, r.protocol) for r in runs} == {("open", "test")}
    assert {(r.model, r.protocol) for r in fresh.collaborator.run_matrix()} == {("open", "test"), ("secret", "test")}
    saved = fresh.outsider.add_protocol({"theirs.ipynb": fresh.owner.read_file("protocol", "test")}, name="theirs")
    assert [(p.model.entity, p.model.number) for p in saved.planned] == [("open", 1)]
    assert all(r.model == "open" for r in fresh.outsider.run_planned(saved))


def test_cancel_is_for_who_started_the_run_the_model_owner_or_a_moderator(fresh: World) -> None:
    by_owner = fresh.owner.run("secret", "test")
    before = lab_state(fresh.owner)
    message = error_of(lambda: fresh.collaborator.cancel(by_owner.id), labkit.Forbidden)
    assert "only who started it" in message and fresh.owner.user in message
    assert lab_state(fresh.owner) == before and fresh.owner.status(by_owner.id).status == "queued"
    assert fresh.collaborator.cancel(fresh.collaborator.run("secret", "test").id).status == "cancelled"
    by_outsider = fresh.outsider.run("open", "test")
    assert fresh.owner.cancel(by_outsider.id).status == "cancelled"  # the owner of its model
    other = fresh.outsider.run("open", "test")
    assert fresh.moderator.cancel(other.id).status == "cancelled"
