"""The run sandbox's plan (argv, environment, limits) and the worker's behaviour around it: what a
machine that cannot sandbox runs, the CPU limit, and the checks on what a run leaves behind. Runs
are executed in the test's own process by the worker's executor, as in test_kernel_start.py."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from notebooks import protocol_notebook

import labkit
from labkit.config import ConfigError, load_settings
from labkit.results.outputs import OutputsRefused, check_manifest
from labkit.runner import execute_run
from labkit.runner.sandbox import (INSIDE_INPUTS, INSIDE_WORK, BubblewrapLauncher, Launcher, Limits, Session,
                                   Usage, launcher_for, startup_warning, unavailable_reason)


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("LABKIT_DATABASE_URL", "postgresql://operator:hunter2@db/lab")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    settings = load_settings(tmp_path / "lab")
    launcher = BubblewrapLauncher("/usr/bin/bwrap")
    paths = launcher.paths(tmp_path / "scratch")
    (paths.inputs / "model").mkdir(parents=True)
    return Session(launcher, paths, Limits.for_run(settings, 60), settings, uid=62005)  # any uid: nothing starts


def test_the_plan_unshares_the_network_and_drops_to_an_unprivileged_uid(session: Session) -> None:
    argv, env = session.command(["python3", "-c", "pass"], {})
    assert env == {}  # bwrap itself starts with an empty environment
    assert {"--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session", "--clearenv"} <= set(argv)
    setpriv = argv.index("/usr/bin/setpriv")
    assert argv[setpriv + 1:setpriv + 7] == ["--reuid=62005", "--regid=62005", "--clear-groups",
                                             "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    assert argv[-3:] == ["python3", "-c", "pass"]


def test_the_plan_binds_inputs_read_only_and_nothing_of_the_lab(session: Session, tmp_path: Path) -> None:
    argv, _ = session.command(["true"], {})
    binds = [(argv[i], argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert ("--ro-bind", str(session.paths.inputs), str(INSIDE_INPUTS)) in binds
    writable = [(src, dest) for kind, src, dest in binds if kind == "--bind"]
    assert writable == [(str(session.paths.work), str(INSIDE_WORK)), (str(session.paths.work / "tmp"), "/tmp"),
                        (str(session.paths.work / "shm"), "/dev/shm")]
    assert argv[argv.index("--remount-ro") + 1] == "/"  # the sandbox's own root is read-only too
    assert binds.index(("--bind", str(session.paths.work / "tmp"), "/tmp")) < len(binds) - 1  # ro binds after it
    sources = [src for _, src, _ in binds]
    assert str(session.settings.root) not in sources and "/" not in sources and "/etc" not in sources
    assert not any(src.startswith(str(tmp_path / "lab")) for src in sources)


def test_a_run_sees_only_its_own_models_part_of_the_simulation_cache(session: Session, tmp_path: Path) -> None:
    from labkit.runner.sandbox import INSIDE_CACHE, cache_dir
    mine = cache_dir(session.settings, "abc123")
    other = cache_dir(session.settings, "def456")
    mine.mkdir(parents=True)
    other.mkdir(parents=True)
    argv, _ = replace(session, cache=mine).command(["true"], {})
    binds = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    assert (str(mine), str(INSIDE_CACHE)) in binds
    assert not [src for src, _ in binds if src in (str(other), str(mine.parent))]
    with pytest.raises(ValueError):
        cache_dir(session.settings, "../other")


def test_the_environment_is_an_allow_list(session: Session) -> None:
    argv, _ = session.command(["true"], {"EXTRA": "1"})
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert not [name for name in env if name.startswith("LABKIT_") and not name.startswith("LABKIT_SIM_CACHE")]
    assert "AWS_SECRET_ACCESS_KEY" not in env and "hunter2" not in " ".join(argv)
    assert env["HOME"] == "/tmp" and env["EXTRA"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["LABKIT_SIM_CACHE_REQUESTS"] == str(INSIDE_WORK / "sim-cache-requests")


def test_the_wall_time_is_the_smaller_of_the_protocols_and_the_labs(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, run_time_limit=100, run_cpu_seconds=1000)
    assert Limits.for_run(settings, 30).wall_seconds == 30
    assert Limits.for_run(settings, 500).wall_seconds == 100
    assert Limits.for_run(settings, 30).cpu_seconds == 61  # at most twice the wall time


def test_each_limit_is_named_when_reached(tmp_path: Path) -> None:
    limits = Limits.for_run(load_settings(tmp_path, run_memory_mb=100, run_processes=10, run_folder_mb=5,
                                          run_folder_files=50), 60)
    assert limits.exceeded(Usage(cpu_seconds=1, memory_bytes=2**20, processes=3)) is None
    assert "run_memory_mb" in limits.exceeded(Usage(memory_bytes=101 * 2**20))
    assert "run_processes" in limits.exceeded(Usage(processes=10))
    assert "run_folder_mb" in limits.exceeded(Usage(folder_bytes=6 * 2**20))
    assert "run_folder_files" in limits.exceeded(Usage(folder_files=51))
    assert "run_cpu_seconds" in limits.exceeded(Usage(cpu_seconds=1000))


@pytest.mark.parametrize("setting, value", [("run_memory_mb", 0), ("run_processes", -1), ("run_time_limit", 1e9),
                                            ("run_cpu_seconds", 0), ("sandbox_uid_base", 0),
                                            ("trusted_single_user", "maybe")])
def test_unusable_sandbox_settings_are_refused(tmp_path: Path, setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_settings(tmp_path, **{setting: value})


def test_this_machine_can_sandbox(tmp_path: Path) -> None:
    assert unavailable_reason() is None  # scripts/install.sh installs bubblewrap
    settings = load_settings(tmp_path)
    assert isinstance(launcher_for(settings), BubblewrapLauncher) and startup_warning(settings) is None
    trusted = load_settings(tmp_path, trusted_single_user=True)
    assert type(launcher_for(trusted)) is Launcher and "WITHOUT a sandbox" in startup_warning(trusted)


@pytest.fixture
def cannot_sandbox(lab: labkit.Lab, models_dir: Path) -> labkit.Lab:
    """The lab's settings as a worker on a machine without bubblewrap would have them."""
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06", visibility="public")
    lab.add_protocol({"mine.ipynb": protocol_notebook()}, name="mine", visibility="public")
    lab.add_user("stranger", roles=["protocol-author"])
    lab.as_user("stranger").add_protocol({"theirs.ipynb": protocol_notebook()}, name="theirs", visibility="public")
    return lab


def test_without_a_sandbox_only_the_operators_protocols_run(cannot_sandbox: labkit.Lab) -> None:
    lab = cannot_sandbox
    settings = replace(lab.settings, sandbox_bwrap="/nonexistent/bwrap")
    warning = startup_warning(settings)
    assert "not installed" in warning and repr(lab.settings.user) in warning

    theirs = lab.run("tt06", "theirs")
    assert execute_run(settings, theirs.id) == "failed"
    info = lab.status(theirs.id)
    assert "cannot sandbox" in info.error and "'stranger'" in info.error and "not installed" in info.error
    with pytest.raises(labkit.InvalidInput, match="has no prediction"):  # no notebook was started
        lab.prediction(theirs.id)

    mine = lab.run("tt06", "mine")
    assert execute_run(settings, mine.id) == "success", lab.status(mine.id).error


def test_a_trusted_single_user_lab_runs_everyones_protocols_without_a_sandbox(cannot_sandbox: labkit.Lab) -> None:
    lab = cannot_sandbox
    settings = replace(lab.settings, sandbox_bwrap="/nonexistent/bwrap", trusted_single_user=True)
    theirs = lab.run("tt06", "theirs")
    assert execute_run(settings, theirs.id) == "success", lab.status(theirs.id).error
    assert lab.prediction(theirs.id).outputs["peak"].scalar == 8.0


def test_a_busy_loop_meets_the_cpu_limit(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    lab.add_protocol({"spin.ipynb": protocol_notebook(body="while True:\n    pass")}, name="spin")
    run = lab.run("tt06", "spin")
    assert execute_run(replace(lab.settings, run_cpu_seconds=3), run.id) == "failed"
    error = lab.status(run.id).error
    assert "CPU time limit of 4 s" in error and "run_cpu_seconds" in error


def test_undeclared_outputs_are_dropped_with_a_note(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    body = ("from labkit.results import OutputWriter\nout = OutputWriter(output_dir)\n"
            "for name in ('time', 'doubled', 'peak', 'extra'):\n    out.save(name, [1.0, 2.0], units='ms')")
    lab.add_protocol({"extra.ipynb": protocol_notebook(body=body)}, name="extra")
    run = lab.run("tt06", "extra")
    assert execute_run(lab.settings, run.id) == "success", lab.status(run.id).error
    prediction = lab.prediction(run.id)
    assert sorted(prediction.outputs) == ["doubled", "peak", "time"]
    assert "not declared in the protocol's interface were not kept: ['extra']" in (prediction.folder / "log.txt").read_text()
    assert not (prediction.folder / "outputs" / "extra.csv").exists()


@pytest.mark.parametrize("manifest, problem", [
    ({"peak": {"units": "mV", "shape": [], "file": "../../../etc/passwd"}}, "stored as peak.csv"),
    ({"../x": {"units": "mV", "shape": [], "file": "../x.csv"}}, "not an identifier"),
    ({"peak": {"units": "mV", "shape": [1, 2, 3], "file": "peak.csv"}}, "unusable shape"),
    ({"peak": {"units": ["mV"], "shape": [], "file": "peak.csv"}}, "needs units"),
    ({"other": {"units": "mV", "shape": [], "file": "other.csv"}}, "not declared"),
    (["peak"], "must map output names"),
])
def test_a_manifest_that_breaks_the_output_format_is_refused(manifest: object, problem: str) -> None:
    with pytest.raises(OutputsRefused, match=problem):
        check_manifest(json.loads(json.dumps(manifest)), {"peak"})


def test_a_long_error_is_kept_bounded_with_its_last_line(lab: labkit.Lab, models_dir: Path) -> None:
    lab.add_model(models_dir / "ten_tusscher_model_2006_epi.cellml", name="tt06")
    body = 'raise RuntimeError("state\\n" * 5000 + "the telling last line")'
    lab.add_protocol({"long.ipynb": protocol_notebook(body=body)}, name="long")
    run = lab.run("tt06", "long")
    assert execute_run(lab.settings, run.id) == "failed"
    error = lab.status(run.id).error
    assert error.startswith("RuntimeError: state") and error.endswith("the telling last line")
    assert len(error) < 10_300 and "characters ..." in error


def test_the_library_and_the_runner_import_without_myokit() -> None:
    """Myokit (and labkit.sim) are for the sandboxed kernel and the worker's compiles: the CLI, the
    dashboards and the API must not pay for them at import time."""
    import subprocess
    import sys
    code = ("import sys, labkit; labkit.Lab; from labkit.runner import execute_run; "
            "print(sorted(m for m in ('myokit', 'labkit.sim') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_cache_folder_follows_the_workers_setting(session: Session, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    from labkit.runner.sandbox import cache_dir
    assert cache_dir(session.settings, "abc") == session.settings.storage_root / "cache" / "sim" / "abc"
    monkeypatch.setenv("LABKIT_SIM_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir(session.settings, "abc") == tmp_path / "elsewhere" / "abc"
    monkeypatch.setenv("LABKIT_SIM_CACHE", "off")
    assert cache_dir(session.settings, "abc") is None
