"""``labkit``: the command line. Every command works on the lab in ``--lab`` (or $LABKIT_LAB, or
the current folder)."""
from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from .config import load_settings
from .access import PUBLIC_VISITOR, ROLES
from .errors import LabkitError
from .experiments import RunInfo
from .lab import Lab
from .progress import wait_with_progress

KIND_PLURALS = {"models": "model", "protocols": "protocol", "datasets": "dataset"}


class LabkitGroup(click.Group):
    """Turns labkit's own errors into one clear line and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabkitError as err:
            raise click.ClickException(str(err)) from None
        except TimeoutError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=LabkitGroup)
@click.option("--lab", "lab_dir", envvar="LABKIT_LAB", type=click.Path(file_okay=False),
              help="The lab folder (default: $LABKIT_LAB or the current folder).")
@click.pass_context
def main(ctx: click.Context, lab_dir: str | None) -> None:
    """labkit: versioned models, protocols and datasets; experiments on Celery workers."""
    ctx.obj = {"lab_dir": lab_dir}


def _lab(ctx: click.Context) -> Lab:
    if "lab" not in ctx.obj:
        ctx.obj["lab"] = Lab.open(ctx.obj["lab_dir"])
        ctx.call_on_close(ctx.obj["lab"].close)
    return ctx.obj["lab"]


def _interruptible() -> None:
    """Make Ctrl-C (SIGINT) raise KeyboardInterrupt whatever this process inherited. A process started
    in the background by a shell, or by a program that ignores Ctrl-C, inherits SIGINT as ignored;
    the servers we start run in sessions of their own and would then outlive an interrupt."""
    import signal
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _kind(value: str) -> str:
    return KIND_PLURALS.get(value, value)


def _echo_run(info: RunInfo) -> None:
    line = f"{info.id}  {info.status:<12} {info.model} v{info.model_version} x {info.protocol} v{info.protocol_version}"
    if info.error and info.status != "success":
        line += f"\n    {info.error.splitlines()[0]}"
    click.echo(line)


def _wait_with_progress(lab: Lab, runs: list[RunInfo], timeout: float | None) -> list[RunInfo]:
    return wait_with_progress(lab, runs, "experiments", timeout=timeout)


@main.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create (or upgrade) a lab in the lab folder."""
    lab = _lab(ctx)
    click.echo(f"lab ready in {lab.settings.root} (database {lab.settings.database_url})")


@main.command()
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Entity name (default: the file name without its extension).")
@click.option("--message", "-m", default="", help="What changed in this version.")
@click.option("--parent", help="The commit your change is based on; refused if another version came since.")
@click.option("--tag", help="Tag the new version with this name.")
@click.option("--protocol", help="For a dataset: the protocol whose outputs it measures.")
@click.option("--run", "run_planned", is_flag=True, help="Also run the experiments this version implies.")
@click.option("--visibility", type=click.Choice(["private", "public"]), default=None,
              help="Who may read the new version (default: the lab's default_visibility, normally private).")
@click.pass_context
def add(ctx: click.Context, kind: str, file: str, name: str | None, message: str, parent: str | None,
        tag: str | None, protocol: str | None, run_planned: bool, visibility: str | None) -> None:
    """Add a model (.cellml), protocol (.ipynb) or dataset (.csv), or a new version of one."""
    lab = _lab(ctx)
    if kind == "dataset":
        if not protocol:
            raise click.UsageError("a dataset needs --protocol NAME")
        saved = lab.add_dataset(file, protocol=protocol, name=name, message=message, parent=parent, tag=tag,
                                visibility=visibility)
    else:
        adder = lab.add_model if kind == "model" else lab.add_protocol
        saved = adder(file, name=name, message=message, parent=parent, tag=tag, visibility=visibility)
    click.echo(f"saved {saved.version.label}")
    if saved.planned:
        click.echo(f"{len(saved.planned)} experiment(s) implied: "
                   + ", ".join(f"{p.model.entity} x {p.protocol.entity}" for p in saved.planned))
        if run_planned:
            for info in lab.run_planned(saved):
                _echo_run(info)


@main.command("list")
@click.argument("kind", type=click.Choice(list(KIND_PLURALS)))
@click.pass_context
def list_entities(ctx: click.Context, kind: str) -> None:
    """List the models, protocols or datasets."""
    lab = _lab(ctx)
    for name in lab.names(_kind(kind)):
        v = lab.version(_kind(kind), name)
        click.echo(f"{name:<40} v{v.number}  {v.commit[:10]}  {v.created_at:%Y-%m-%d %H:%M}  {v.author}")


@main.command()
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset"]))
@click.argument("name")
@click.pass_context
def versions(ctx: click.Context, kind: str, name: str) -> None:
    """List every version of an entity."""
    for v in _lab(ctx).versions(kind, name):
        tags = f" [{', '.join(v.tags)}]" if v.tags else ""
        click.echo(f"v{v.number}  {v.commit}  {v.created_at:%Y-%m-%d %H:%M}  {v.visibility:<9}  {v.author}  "
                   f"{v.message.strip()}{tags}")


@main.command()
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset"]))
@click.argument("name")
@click.argument("version")
@click.argument("tag")
@click.pass_context
def tag(ctx: click.Context, kind: str, name: str, version: str, tag: str) -> None:
    """Name a version (VERSION: a number, a tag, a commit prefix or 'latest')."""
    click.echo(f"tagged {_lab(ctx).tag(kind, name, version, tag).label} as {tag}")


@main.command()
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset"]))
@click.argument("name")
@click.option("--version", "ref", default="latest")
@click.option("--file", "file_name", help="Which file (default: the main file).")
@click.option("--list", "list_files", is_flag=True, help="List the version's files instead.")
@click.pass_context
def cat(ctx: click.Context, kind: str, name: str, ref: str, file_name: str | None, list_files: bool) -> None:
    """Print a file of a version, byte for byte."""
    lab = _lab(ctx)
    if list_files:
        click.echo("\n".join(lab.files(kind, name, ref)))
        return
    sys.stdout.buffer.write(lab.read_file(kind, name, ref, file_name))


@main.command()
@click.argument("model")
@click.option("--version", "ref", default="latest")
@click.pass_context
def annotations(ctx: click.Context, model: str, ref: str) -> None:
    """The oxmeta annotations of a model version."""
    for term, variable in sorted(_lab(ctx).annotations(model, ref).items()):
        click.echo(f"{term:<60} {variable}")


@main.command("models-with")
@click.argument("term")
@click.pass_context
def models_with(ctx: click.Context, term: str) -> None:
    """Which models annotate an oxmeta TERM (latest versions)."""
    click.echo("\n".join(_lab(ctx).models_with_term(term)))


@main.command()
@click.argument("model")
@click.argument("protocol")
@click.pass_context
def compat(ctx: click.Context, model: str, protocol: str) -> None:
    """Is PROTOCOL compatible with MODEL? Names the required terms the model lacks."""
    result = _lab(ctx).compatibility(model, protocol)
    click.echo(result.explain())
    ctx.exit(0 if result.compatible else 1)


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: use NAME=VALUE", param_hint="-p")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@main.command()
@click.argument("model")
@click.argument("protocol")
@click.option("-p", "--param", "params", multiple=True, help="Protocol parameter NAME=VALUE (repeatable).")
@click.option("--model-version", default="latest")
@click.option("--protocol-version", default="latest")
@click.option("--wait/--no-wait", default=False, help="Wait for the run to end.")
@click.option("--timeout", type=float, default=None)
@click.option("--queue", default=None, help="Send the run to this queue (e.g. 'long', served by "
              "`labkit worker --queues long`) instead of the lab's default queue.")
@click.pass_context
def run(ctx: click.Context, model: str, protocol: str, params: tuple[str, ...], model_version: str,
        protocol_version: str, wait: bool, timeout: float | None, queue: str | None) -> None:
    """Queue PROTOCOL on MODEL (needs running workers: `labkit workers start`)."""
    lab = _lab(ctx)
    info = lab.run(model, protocol, _parse_params(params), model_version=model_version,
                   protocol_version=protocol_version, queue=queue)
    if wait:
        info = _wait_with_progress(lab, [info], timeout)[0]
    _echo_run(info)


@main.command()
@click.option("--model", "models", multiple=True, help="Only these models (repeatable).")
@click.option("--protocol", "protocols", multiple=True, help="Only these protocols (repeatable).")
@click.option("--rerun", is_flag=True, help="Queue every pair again, even those already run on these versions.")
@click.option("--wait/--no-wait", default=True)
@click.option("--timeout", type=float, default=None)
@click.pass_context
def matrix(ctx: click.Context, models: tuple[str, ...], protocols: tuple[str, ...], rerun: bool, wait: bool,
           timeout: float | None) -> None:
    """Run every protocol on every model (latest versions); incompatible pairs are recorded as inapplicable.

    A pair already run on its latest versions (queued, running, or ended well) is shown, not run again,
    unless --rerun is given; failed and cancelled runs are queued again."""
    lab = _lab(ctx)
    runs = lab.run_matrix(models or None, protocols or None, only_compatible=False, rerun=rerun)
    if wait:
        runs = _wait_with_progress(lab, runs, timeout)
    for info in runs:
        _echo_run(info)


@main.command()
@click.option("--status", help="Only runs with this status.")
@click.pass_context
def runs(ctx: click.Context, status: str | None) -> None:
    """List runs."""
    for info in _lab(ctx).runs(status=status):
        _echo_run(info)


@main.command()
@click.argument("run_id")
@click.pass_context
def show(ctx: click.Context, run_id: str) -> None:
    """A run's status history and its prediction: outputs, plots, notebook, log."""
    lab = _lab(ctx)
    info = lab.status(run_id)
    _echo_run(info)
    for status, attempt, at, detail in info.history:
        click.echo(f"  {at:%H:%M:%S}  {status:<12} attempt {attempt}  {detail}")
    if info.failing_cell:
        click.echo(f"failing {info.failing_cell}")
    if info.missing_terms:
        click.echo("missing terms: " + ", ".join(info.missing_terms))
    if info.results_path:
        p = lab.prediction(run_id)
        click.echo(f"notebook: {p.notebook}")
        for o in p.outputs.values():
            value = f"= {o.scalar:g}" if o.values.size == 1 else f"shape {o.shape}"
            click.echo(f"  output {o.name} [{o.units}] {value}")
        for plot in p.plots:
            click.echo(f"  plot {plot}")
        click.echo(f"timings: {p.timings}")
    binder = lab.binder_url(run_id)
    if binder:
        click.echo(f"binder: {binder}")
    if info.rerun_of:
        click.echo(f"re-run of {info.rerun_of}:")
        _echo_reproduction(lab, info)


@main.command()
@click.argument("run_id")
@click.option("--wait/--no-wait", default=True, help="Wait for the re-run and compare (default), or only queue it.")
@click.option("--timeout", type=float, default=None)
@click.option("--queue", default=None, help="Send the re-run to this queue instead of the lab's default queue.")
@click.pass_context
def rerun(ctx: click.Context, run_id: str, wait: bool, timeout: float | None, queue: str | None) -> None:
    """Run RUN_ID's experiment again (same versions and parameters, fresh folder) and compare every
    output: identical, within the protocol's tolerance, or different. Exit status 1 if not reproduced."""
    lab = _lab(ctx)
    info = lab.rerun(run_id, queue=queue)
    click.echo(f"re-run of {run_id}: run {info.id} ({info.model} v{info.model_version} x "
               f"{info.protocol} v{info.protocol_version})")
    if not wait:
        click.echo(f"compare it when it ends: labkit show {info.id}")
        return
    info = _wait_with_progress(lab, [info], timeout)[0]
    _echo_reproduction(lab, info, strict=True)


@main.command()
@click.argument("run_id")
@click.option("--binder", "binder_dir", type=click.Path(file_okay=False),
              help="Write a folder repo2docker (BinderHub) builds: a new or empty folder.")
@click.option("--push", is_flag=True, help="With --binder: publish it on the lab's binder_remote and print its link.")
@click.option("--omex", "omex_file", type=click.Path(dir_okay=False),
              help="Write the whole prediction as a COMBINE/OMEX archive (a new .omex file).")
@click.pass_context
def export(ctx: click.Context, run_id: str, binder_dir: str | None, push: bool, omex_file: str | None) -> None:
    """Export RUN_ID's prediction: for Binder (its notebook, inputs and outputs, pinned requirements,
    runtime.txt, apt.txt, postBuild and a README) or as a COMBINE archive (docs/reproducibility.md)."""
    if (binder_dir is None) == (omex_file is None):
        raise click.UsageError("give one of --binder DIR or --omex FILE")
    if push and binder_dir is None:
        raise click.UsageError("--push publishes a Binder folder: give --binder DIR")
    lab = _lab(ctx)
    if omex_file is not None:
        click.echo(f"exported run {run_id} to {lab.export_prediction_archive(run_id, omex_file)}")
        return
    done = lab.export_binder(run_id, binder_dir, push=push)
    click.echo(f"exported run {run_id} to {done.folder} ({len(done.requirements)} pinned requirements"
               + (f", {len(done.unpinned)} unpinned: {', '.join(done.unpinned)}" if done.unpinned else "") + ")")
    if done.binder_url:
        click.echo(f"pushed; Binder: {done.binder_url}")
    else:
        click.echo(f"re-run it: cd {done.folder} && python3 -m pip install -r requirements.txt && bash postBuild "
                   "&& papermill notebook.ipynb again.ipynb --cwd . && python3 -m labkit.results.reproduce .")


@main.command("export-version")
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset", "models", "protocols", "datasets"]))
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--version", "ref", default="latest", help="A number, a tag or a commit prefix (default: latest).")
@click.pass_context
def export_version(ctx: click.Context, kind: str, name: str, file: str, ref: str) -> None:
    """Write one version of a model, protocol or dataset as a COMBINE/OMEX archive FILE (*.omex)."""
    click.echo(f"exported {_kind(kind)} {name} to {_lab(ctx).export_archive(_kind(kind), name, file, ref)}")


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.pass_context
def import_(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Import COMBINE/OMEX archives (models, protocols, datasets, predictions) and CellML files; a
    folder imports every archive and .cellml file in it, with a progress bar and a summary of what was
    refused and why. An archive that is refused stores nothing."""
    from tqdm import tqdm

    from .exchange import archives
    lab = _lab(ctx)
    imported, refused = [], []
    for path in map(Path, paths):
        if path.is_dir():
            with tqdm(total=len(archives.importable(path)), desc=f"importing {path.name}", unit="file", file=sys.stderr) as bar:
                done, bad = archives.import_folder(lab, path, on_each=lambda _: bar.update(1))
        else:
            done, bad = [], []
            try:
                done.append(archives.import_file(lab, path))
            except LabkitError as err:
                bad.append(archives.Refused(path, str(err).splitlines()[0]))
        imported += done
        refused += bad
    for item in imported:
        what = f"v{item.version.number}" if item.version else f"prediction in {item.prediction.folder}"
        click.echo(f"imported {item.source.name}: {item.kind} {item.name} {what}")
    for item in refused:
        click.echo(f"refused  {item.source.name}: {item.reason}")
    click.echo(f"{len(imported)} imported, {len(refused)} refused")
    if refused:
        sys.exit(1)


def _echo_reproduction(lab: Lab, info: RunInfo, strict: bool = False) -> None:
    """The comparison of a finished re-run with its original (or why there is none yet); ``strict``
    makes a failure to reproduce the command's error."""
    if not info.done:
        click.echo(f"re-run {info.id} is {info.status}; compare it when it ends: labkit show {info.id}")
        return
    report = lab.reproduction(info.id)
    click.echo(report.table())
    counts = ", ".join(f"{n} {verdict}" for verdict, n in report.counts().items() if n)
    if not report.reproduced:
        message = f"run {info.rerun_of} was NOT reproduced by {info.id} ({info.status}): {counts}"
        if strict:
            raise click.ClickException(message)
        click.echo(message)
        return
    click.echo(f"run {info.rerun_of} reproduced by {info.id}: {counts}")


@main.command()
@click.argument("run_id")
@click.pass_context
def cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a queued or running run."""
    _echo_run(_lab(ctx).cancel(run_id))


@main.group()
def user() -> None:
    """The lab's accounts: users, their roles and passwords (the operator's tool; docs/permissions.md)."""


def _new_password(prompt: bool) -> str | None:
    """A password typed twice, never echoed and never on the command line (``ps`` shows that to all)."""
    if not prompt:
        return None
    return click.prompt("password", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("name")
@click.option("--moderator/--not-moderator", default=False,
              help="May grant the 'moderated' visibility (and read everything).")
@click.option("--role", "roles", multiple=True, type=click.Choice(list(ROLES)),
              help="Grant this role (repeatable): admin, moderator, protocol-author.")
@click.option("--password", "ask_password", is_flag=True, help="Ask for a password to sign in with.")
@click.pass_context
def user_add(ctx: click.Context, name: str, moderator: bool, roles: tuple[str, ...], ask_password: bool) -> None:
    """Add user NAME (or change whether NAME is a moderator), with roles and a password."""
    lab = _lab(ctx.parent)
    password = _new_password(ask_password)
    lab.add_user(name, moderator=moderator, roles=roles, password=password)
    granted = sorted(set(roles) | ({"moderator"} if moderator else set()))
    click.echo(f"user {name}" + (f" ({', '.join(granted)})" if granted else "")
               + ("; they can sign in" if password else ""))


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """Every user, with roles, whether they can sign in, and whether they are disabled."""
    for account in _lab(ctx.parent).accounts():
        notes = [", ".join(account.roles)] if account.roles else []
        notes += [] if account.has_password else ["no password"]
        notes += ["DISABLED"] if account.disabled else []
        click.echo(account.name + (f"  ({'; '.join(notes)})" if notes else ""))


@user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(list(ROLES)))
@click.option("--remove", is_flag=True, help="Withdraw the role instead.")
@click.pass_context
def user_role(ctx: click.Context, name: str, role: str, remove: bool) -> None:
    """Grant ROLE to user NAME (or withdraw it with --remove)."""
    account = _lab(ctx.parent).set_role(name, role, not remove)
    click.echo(f"{name}: {', '.join(account.roles) or 'no roles'}")


@user.command("password")
@click.argument("name")
@click.option("--reset", is_flag=True, help="Make up a random password and print it once, instead of asking.")
@click.pass_context
def user_password(ctx: click.Context, name: str, reset: bool) -> None:
    """Set (or --reset) the password of NAME; their sign-ins end."""
    lab = _lab(ctx.parent)
    if reset:
        click.echo(f"new password of {name} (hand it over now, it is not shown again): {lab.reset_password(name)}")
    else:
        lab.set_password(_new_password(True) or "", user=name)
        click.echo(f"password of {name} set; their sign-ins have ended")


@user.command("disable")
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the account again.")
@click.pass_context
def user_disable(ctx: click.Context, name: str, enable: bool) -> None:
    """Disable NAME: no sign-in, tokens and sessions stop working; what they made stays."""
    _lab(ctx.parent).disable_user(name, not enable)
    click.echo(f"{name} {'enabled' if enable else 'disabled'}")


@user.command("delete")
@click.argument("name")
@click.pass_context
def user_delete(ctx: click.Context, name: str) -> None:
    """Delete NAME's account (only if they own nothing; disable them otherwise)."""
    _lab(ctx.parent).delete_user(name)
    click.echo(f"deleted {name}")


@main.group()
def token() -> None:
    """API tokens for the lab's REST API: named, expiring, revoked one at a time."""


@token.command("create")
@click.argument("user_name")
@click.option("--name", "token_name", default=None, help="What the token is for (default: token-N).")
@click.option("--days", type=float, default=None, help="Days until it expires (default: the lab's token_days).")
@click.option("--no-expiry", is_flag=True, help="Never expires (revoke it when it is no longer needed).")
@click.pass_context
def token_create(ctx: click.Context, user_name: str, token_name: str | None, days: float | None,
                 no_expiry: bool) -> None:
    """Create an API token for USER_NAME and print it (once: only its hash is kept)."""
    lifetime: float | None | str = None if no_expiry else (days if days is not None else "default")
    click.echo(_lab(ctx.parent).create_token(user_name, name=token_name, days=lifetime))


@token.command("list")
@click.argument("user_name")
@click.pass_context
def token_list(ctx: click.Context, user_name: str) -> None:
    """The tokens of USER_NAME: names and dates (the tokens themselves are never kept)."""
    for t in _lab(ctx.parent).tokens(user_name):
        expiry = "expired" if t.expired else (f"expires {t.expires_at:%Y-%m-%d}" if t.expires_at else "no expiry")
        used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
        click.echo(f"{t.name}  created {t.created_at:%Y-%m-%d}  {expiry}  {used}")


@token.command("revoke")
@click.argument("user_name")
@click.argument("token_name", required=False)
@click.option("--all", "revoke_all", is_flag=True, help="Revoke every token of USER_NAME.")
@click.pass_context
def token_revoke(ctx: click.Context, user_name: str, token_name: str | None, revoke_all: bool) -> None:
    """Revoke USER_NAME's token TOKEN_NAME (or --all of them)."""
    lab = _lab(ctx.parent)
    if revoke_all == bool(token_name):
        raise click.UsageError("name one token to revoke, or give --all (`labkit token list USER` shows them)")
    if revoke_all:
        click.echo(f"revoked {lab.revoke_tokens(user_name)} token(s) of {user_name}")
    else:
        lab.revoke_token(token_name or "", user_name)
        click.echo(f"revoked {user_name}'s token {token_name}")


@main.command()
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset"]))
@click.argument("name")
@click.argument("ref")
@click.argument("level", type=click.Choice(["private", "public", "moderated"]))
@click.pass_context
def visibility(ctx: click.Context, kind: str, name: str, ref: str, level: str) -> None:
    """Set who may read version REF of an entity: private (owner and collaborators), public, or
    moderated (public and endorsed; a moderator only)."""
    click.echo(f"{_lab(ctx).set_visibility(kind, name, ref, level).label} is now {level}")


@main.command()
@click.argument("kind", type=click.Choice(["model", "protocol", "dataset"]))
@click.argument("name")
@click.argument("collaborator", required=False)
@click.option("--remove", is_flag=True, help="Stop sharing with COLLABORATOR.")
@click.pass_context
def share(ctx: click.Context, kind: str, name: str, collaborator: str | None, remove: bool) -> None:
    """Share an entity with COLLABORATOR (may read every version, add versions and tag); the owner
    only. Without COLLABORATOR: show the owner and collaborators."""
    lab = _lab(ctx)
    if collaborator:
        (lab.unshare if remove else lab.share)(kind, name, collaborator)
    owner, collaborators = lab.collaborators(kind, name)
    click.echo(f"{kind} {name}: owner {owner}; collaborators: {', '.join(collaborators) or 'none'}")


@main.group()
def workers() -> None:
    """The lab's own worker processes (embedded default)."""


@workers.command("start")
@click.option("-n", "--count", type=int, default=None, help="How many (default: the lab's `workers` setting).")
@click.pass_context
def workers_start(ctx: click.Context, count: int | None) -> None:
    lab = _lab(ctx.parent)
    _warn_sandbox(lab.sandbox_warning)
    lab.start_workers(count)
    for w in lab.workers.running():
        click.echo(f"{w.name} pid {w.pid} log {w.log}")


def _warn_sandbox(warning: str | None) -> None:
    if warning:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@workers.command("stop")
@click.pass_context
def workers_stop(ctx: click.Context) -> None:
    _lab(ctx.parent).stop_workers()
    click.echo("workers stopped")


@workers.command("status")
@click.pass_context
def workers_status(ctx: click.Context) -> None:
    running = _lab(ctx.parent).workers.running()
    for w in running:
        click.echo(f"{w.name} pid {w.pid} log {w.log}")
    if not running:
        click.echo("no workers running; start them with `labkit workers start`")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", type=int, default=1)
@click.option("--queues", default=None, help="Comma-separated queues to take runs from.")
@click.option("--beat", is_flag=True, help="Run the reaper instead: it takes no runs and re-queues those of "
              "lost workers (start exactly one per lab).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def worker(ctx: click.Context, concurrency: int, queues: str | None, beat: bool,
           celery_args: tuple[str, ...]) -> None:
    """Run one Celery worker in the foreground (scale-out: start one per machine).

    The worker needs only the database and broker URLs (LABKIT_DATABASE_URL, LABKIT_BROKER_URL);
    the lab folder is its own working folder. It never changes the schema: it refuses to start
    if the database is not at the revision this labkit expects.
    """
    from .queue.app import control_queue
    from .queue.embedded import reaper_command, settings_environment, worker_command
    from .store.db import Database, current_revision, head_revision
    from .runner.sandbox import startup_warning
    settings = load_settings(ctx.obj["lab_dir"])
    _warn_sandbox(startup_warning(settings))
    db = Database(settings.database_url)
    try:
        found, wanted = current_revision(db.engine), head_revision()
    finally:
        db.dispose()
    if found != wanted:
        raise click.ClickException(
            f"the lab's database is at schema revision {found or 'none'} but this labkit expects {wanted}: "
            "run `labkit upgrade` on the lab server (or install the same labkit version here)")
    if beat:
        command = reaper_command(Path(settings.root) / "celerybeat-schedule", control_queue(settings))
    else:
        command = worker_command(f"{(queues or settings.default_queue).replace(',', '+')}-{os.getpid()}",
                                 queues or settings.default_queue, concurrency)
    os.environ.update(settings_environment(settings))
    os.execv(sys.executable, command + list(celery_args))


@main.command()
@click.option("--quick", is_flag=True, help="Compare only each repository's main with the database "
              "(what runs when a lab opens); by default every version's commit is looked up too.")
@click.pass_context
def doctor(ctx: click.Context, quick: bool) -> None:
    """Record versions whose save was cut between git and the database; report what cannot be
    repaired (exit status 1 then)."""
    from .doctor import repair
    report = repair(load_settings(ctx.obj["lab_dir"]), check_commits=not quick)
    click.echo(str(report))
    if report.kept or report.missing or report.unexplained:
        ctx.exit(1)


@main.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Bring the lab's database schema to this labkit's version (Alembic migrations)."""
    from .store.db import Database, current_revision, head_revision
    settings = load_settings(ctx.obj["lab_dir"])
    db = Database(settings.database_url)
    try:
        before = current_revision(db.engine)
        db.upgrade()
        click.echo(f"database schema: {before or 'empty'} -> {head_revision()}")
    finally:
        db.dispose()


@main.command()
@click.option("--reference", "reference", default=None, type=click.Path(exists=True, file_okay=False),
              help="The reference folder: <model>/<Protocol>/outputs_<name>.csv.")
@click.option("--sweep", "sweep_only", is_flag=True,
              help="Instead: run the cheap standard protocols on every model of --models, references or not, "
                   "and classify each run (success, inapplicable, no action potential, solver failure, labkit failure).")
@click.option("--models", "models_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of <model>.cellml files (default: 'models' beside the reference folder).")
@click.option("--model", "only_models", multiple=True, help="Only these models (repeatable).")
@click.option("--protocol", "only_protocols", multiple=True, help="Only these Web Lab protocols (repeatable).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Where to write report.html, summary.csv and summary.json (default: <lab>/validation).")
@click.option("--workers", "n_workers", type=int, default=None, help="Worker processes to start if none run.")
@click.option("--retry-failed", is_flag=True,
              help="Run again the experiments whose earlier run failed (in this lab or in the ledger).")
@click.option("--keep-workers", is_flag=True, help="Leave the workers running afterwards.")
@click.option("--no-wait", "no_wait", is_flag=True,
              help="Report on what has finished now; unfinished runs count as pending (and keep running).")
@click.option("--ledger", "ledger_file", type=click.Path(dir_okay=False), default=None,
              help="A ledger of predictions (JSON) to judge from where it matches the inputs and code, "
                   "and to add this validation's finished runs to: a validation over several sittings. "
                   "With --sweep: the sweep's record of verdicts, used the same way.")
@click.pass_context
def validate(ctx: click.Context, reference: str | None, sweep_only: bool, models_dir: str | None,
             only_models: tuple[str, ...], only_protocols: tuple[str, ...], report_dir: str | None,
             n_workers: int | None, retry_failed: bool, keep_workers: bool, no_wait: bool,
             ledger_file: str | None) -> None:
    """Run the standard protocols on every model with reference outputs and compare with them
    (or, with --sweep, on every model and classify how each run ended)."""
    from .validation import Ledger, pass_rate, validate as run_validation, write_report
    if sweep_only:
        if not models_dir:
            raise click.UsageError("--sweep needs --models DIR: the folder of <model>.cellml files to sweep")
        _sweep(ctx, Path(models_dir), only_models, only_protocols, report_dir, n_workers, keep_workers, no_wait,
               ledger_file, retry_failed)
        return
    if reference is None:
        raise click.UsageError("give --reference DIR (or --sweep with --models DIR)")
    ledger = Ledger.load(Path(ledger_file)) if ledger_file else None  # a bad file stops us before the lab opens
    lab = _lab(ctx)
    reference_root = Path(reference).resolve()
    started = not lab.workers.running() and not no_wait
    if started:
        lab.start_workers(n_workers)
    try:
        results = run_validation(lab, reference_root, Path(models_dir) if models_dir else reference_root.parent / "models",
                                 models=set(only_models) or None, protocols=set(only_protocols) or None,
                                 retry_failed=retry_failed, echo=click.echo, wait=not no_wait, ledger=ledger)
    finally:
        if started and not keep_workers:
            lab.stop_workers()
    report = write_report(results, Path(report_dir) if report_dir else lab.settings.root / "validation")
    passed = sum(r.verdict == "pass" for r in results)
    counts = ", ".join(f"{n} {v}" for v, n in sorted(Counter(r.verdict for r in results).items()))
    click.echo(f"pass rate: {100 * pass_rate(results):.1f} % ({passed} of {len(results)} reference outputs; "
               f"{counts}); report: {report}")


def _sweep(ctx: click.Context, models_dir: Path, only_models: tuple[str, ...], only_protocols: tuple[str, ...],
           report_dir: str | None, n_workers: int | None, keep_workers: bool, no_wait: bool,
           record_file: str | None, retry_failed: bool) -> None:
    from .validation.sweep import CLASSES, LABKIT, sweep, write_sweep_report
    from .validation.sweep_record import SweepRecord
    record = SweepRecord.load(Path(record_file)) if record_file else None  # a bad file stops us first
    lab = _lab(ctx)
    started = not lab.workers.running() and not no_wait
    if started:
        lab.start_workers(n_workers)
    try:
        results = sweep(lab, models_dir, models=only_models or None, protocols=only_protocols or None,
                        wait=not no_wait, record=record, retry_failed=retry_failed, echo=click.echo)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    finally:
        if started and not keep_workers:
            lab.stop_workers()
    report = write_sweep_report(results, Path(report_dir) if report_dir else lab.settings.root / "sweep")
    counts = Counter(r.verdict for r in results)
    click.echo(", ".join(f"{counts[c]} {c}" for c in CLASSES if counts[c]) + f"; report: {report}")
    if counts[LABKIT]:
        ctx.exit(1)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default="demo-lab")
@click.option("--workers", "n_workers", type=int, default=2)
@click.option("--keep-workers/--stop-workers", default=False, help="Leave the workers running afterwards.")
@click.option("--serve/--no-serve", default=True,
              help="Then serve the dashboards (with the workers) until Ctrl-C (default); --no-serve for CI.")
@click.option("--port", type=int, default=8866, help="Port of the dashboards (another free one if taken).")
@click.option("--all-protocols", "run_all", is_flag=True,
              help="Run every protocol on every model first (restitution and scans take a while).")
def demo(directory: str, n_workers: int, keep_workers: bool, serve: bool, port: int, run_all: bool) -> None:
    """Create a demo lab with labkit's own models and protocols, run its experiment matrix, and serve
    the dashboards on it."""
    from .demo import build_demo
    _interruptible()
    build_demo(Path(directory), workers=n_workers, keep_workers=keep_workers, echo=click.echo, serve=serve,
               port=port, run_all=run_all)


@main.command()
@click.option("--port", type=int, default=8866, help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--read-only/--read-write", "read_only", default=None,
              help="Hide upload, run and cancel (default: the lab's read_only setting).")
@click.option("--workers/--no-workers", "with_workers", default=False,
              help="Also start the lab's workers (stopped again on exit) so that runs launched here execute.")
@click.option("--pool-size", type=int, default=1, help="Preheated kernels per page (0: none).")
@click.option("--api/--no-api", "with_api", default=False,
              help="Also serve the REST API (a Jupyter server; see docs/api.md).")
@click.option("--api-port", type=int, default=0, help="Port of the REST API (0: any free port).")
@click.option("--user", "page_user", default=None,
              help=f"The user the pages act as (default: the lab's user, or '{PUBLIC_VISITOR}' with "
                   "--read-only, who sees only public and moderated versions).")
@click.option("--sign-in/--no-sign-in", "sign_in", default=None,
              help="Visitors sign in with their accounts; who does not sees the public lab read-only "
                   "(default: the lab's sign_in setting). Needed on any host but loopback, unless --read-only.")
@click.pass_context
def serve(ctx: click.Context, port: int, host: str, read_only: bool | None, with_workers: bool,
          pool_size: int, with_api: bool, api_port: int, page_user: str | None, sign_in: bool | None) -> None:
    """Serve the lab's dashboards (Voilà) and print their URL; Ctrl-C stops them."""
    from .dashboards.serve import ApiServer, DashboardServer, check_host, free_port, page_settings
    _interruptible()
    lab = Lab.open(ctx.obj["lab_dir"], read_only=read_only, sign_in=sign_in)
    ctx.call_on_close(lab.close)
    try:
        check_host(host, lab.settings)
    except PermissionError as err:
        raise click.ClickException(str(err)) from None
    if lab.settings.sign_in and page_user:
        raise click.UsageError("--user and sign-in do not mix: with sign-in each page acts as its visitor")
    if lab.settings.sign_in and not any(a.has_password and not a.disabled for a in lab.accounts()):
        click.echo("nobody can sign in yet: give someone a password, e.g. "
                   "`labkit user add NAME --role admin --password`", err=True)
    started = with_workers and not lab.workers.running()
    if started:
        _warn_sandbox(lab.sandbox_warning)
        lab.start_workers()
    server = DashboardServer(page_settings(lab.settings, page_user), port=port or free_port(host), host=host,
                             pool_size=pool_size, preheat=pool_size > 0)
    api = ApiServer(lab.settings, port=api_port or free_port(host), host=host) if with_api else None
    try:
        server.start(timeout=120)
        click.echo(f"dashboards of {lab.settings.root}" + (" (read-only)" if lab.settings.read_only else "")
                   + f": {server.url}")
        if api is not None:
            api.start(timeout=120)
            credentials = ("labkit tokens or a sign-in" if lab.settings.sign_in else f"Jupyter token {api.token}")
            click.echo(f"REST API: {api.url} ({credentials}); see docs/api.md")
        who = ("each page acts as its signed-in visitor (sign in at "
               f"{server.base_url.removesuffix('voila/render/')}login)" if lab.settings.sign_in
               else f"the pages act as user {server.settings.user!r}")
        click.echo(f"{who}; log: {server.log}; press Ctrl-C to stop")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if api is not None:
            api.stop()
        server.stop()
        if started:
            lab.stop_workers()


@main.command("hub-service")
@click.option("--workers/--no-workers", "with_workers", default=False,
              help="Also start the lab's workers (stopped again when the hub stops the service).")
@click.pass_context
def hub_service(ctx: click.Context, with_workers: bool) -> None:
    """Serve the lab as JupyterHub's `labkit` managed service: the REST API and the dashboards behind
    the hub's sign-in, each request acting as its hub user (docs/jupyterhub.md). JupyterHub runs this
    command (c.JupyterHub.services); it refuses to run anywhere else."""
    from .hub import hub_environment, run_hub_service
    _interruptible()
    try:
        hub_environment()
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    lab = Lab.open(ctx.obj["lab_dir"])
    ctx.call_on_close(lab.close)
    started = with_workers and not lab.workers.running()
    if started:
        _warn_sandbox(lab.sandbox_warning)
    status = run_hub_service(lab.settings, start_workers=lab.start_workers if started else None,
                             stop_workers=lab.stop_workers if started else None, echo=click.echo)
    ctx.exit(status)


if __name__ == "__main__":
    main()
