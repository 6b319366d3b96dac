"""Settings: defaults < labkit.toml < LABKIT_* environment < explicit overrides; bad settings stop
with a message naming them."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

import labkit
from labkit.config import CONFIG_FILE, ConfigError, Settings, load_settings
from labkit.errors import LabkitError

SETTING_NAMES = [f.name for f in fields(Settings) if f.name != "root"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LABKIT_* setting from the machine running the tests leaks into them."""
    for name in SETTING_NAMES + ["lab"]:
        monkeypatch.delenv(f"LABKIT_{name.upper()}", raising=False)
    monkeypatch.setenv("USER", "tester")


def write_config(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_FILE).write_text(text)
    return root


def test_the_embedded_defaults_keep_everything_inside_the_lab_folder(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s.root == tmp_path.resolve()
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'labkit.sqlite'}"
    assert s.broker_url == f"sqla+sqlite:///{tmp_path.resolve() / 'broker.sqlite'}"
    assert s.result_backend == f"db+sqlite:///{tmp_path.resolve() / 'celery-results.sqlite'}"
    assert s.storage_root == tmp_path.resolve()
    assert s.repositories == tmp_path.resolve() / "repos" and s.results == tmp_path.resolve() / "results"
    assert s.scratch == tmp_path.resolve() / "scratch" and s.logs == tmp_path.resolve() / "logs"
    assert (s.workers, s.run_time_limit, s.heartbeat_interval, s.stale_after) == (2, 3600.0, 1.0, 15.0)
    assert s.default_queue == "labkit" and s.user == "tester"


def test_the_lab_folder_comes_from_labkit_lab_then_the_current_folder(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().root == tmp_path.resolve()
    monkeypatch.setenv("LABKIT_LAB", str(tmp_path / "elsewhere"))
    assert load_settings().root == (tmp_path / "elsewhere").resolve()
    assert load_settings(tmp_path / "given").root == (tmp_path / "given").resolve()


def test_values_from_labkit_toml(tmp_path: Path) -> None:
    root = write_config(tmp_path / "lab", """
[labkit]
database_url = "postgresql+psycopg://lab@db/labkit"
broker_url = "amqp://guest:guest@mq:5672//"
storage_root = "data"
workers = 4
run_time_limit = 7200
heartbeat_interval = 0.5
stale_after = 30
default_queue = "big"
user = "alice"
""")
    s = load_settings(root)
    assert s.database_url == "postgresql+psycopg://lab@db/labkit"
    assert s.broker_url == "amqp://guest:guest@mq:5672//"
    assert s.result_backend == f"db+sqlite:///{root.resolve() / 'celery-results.sqlite'}"  # still the default
    assert s.storage_root == root.resolve() / "data"  # relative to the lab folder
    assert s.repositories == root.resolve() / "data" / "repos"
    assert (s.workers, s.run_time_limit, s.heartbeat_interval, s.stale_after) == (4, 7200.0, 0.5, 30.0)
    assert isinstance(s.workers, int) and isinstance(s.run_time_limit, float)
    assert (s.default_queue, s.user) == ("big", "alice")


def test_an_absolute_storage_root_is_kept(tmp_path: Path) -> None:
    root = write_config(tmp_path / "lab", f'[labkit]\nstorage_root = "{tmp_path / "shared"}"\n')
    assert load_settings(root).storage_root == tmp_path / "shared"


def test_environment_beats_the_file_and_overrides_beat_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_config(tmp_path / "lab", '[labkit]\nworkers = 4\nrun_time_limit = 7200\nuser = "alice"\n'
                                          'database_url = "sqlite:///from-file.sqlite"\n')
    monkeypatch.setenv("LABKIT_WORKERS", "8")
    monkeypatch.setenv("LABKIT_USER", "bob")
    monkeypatch.setenv("LABKIT_DATABASE_URL", "postgresql://env/db")
    monkeypatch.setenv("LABKIT_STALE_AFTER", "2.5")
    s = load_settings(root)
    assert (s.workers, s.user, s.database_url, s.stale_after) == (8, "bob", "postgresql://env/db", 2.5)
    assert s.run_time_limit == 7200.0  # not in the environment: the file's value
    s = load_settings(root, workers=1, user=None)  # None means "not given"
    assert (s.workers, s.user) == (1, "bob")


def test_lab_open_uses_the_same_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_RUN_TIME_LIMIT", "99")
    with labkit.Lab.open(tmp_path / "lab", workers=3) as lab:
        assert (lab.settings.run_time_limit, lab.settings.workers) == (99.0, 3)
        assert (tmp_path / "lab" / CONFIG_FILE).is_file()
        assert (tmp_path / "lab" / "labkit.sqlite").is_file() and lab.settings.repositories.is_dir()
    assert load_settings(tmp_path / "lab").workers == 2  # the written labkit.toml sets nothing


def test_an_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    root = write_config(tmp_path / "lab", "[labkit]\nworkers = 2\nwokers = 4\n")
    with pytest.raises(ConfigError, match=r"unknown settings \['wokers'\]; known: .*'workers'"):
        load_settings(root)


def test_settings_outside_the_labkit_table_are_refused_not_ignored(tmp_path: Path) -> None:
    root = write_config(tmp_path / "lab", "workers = 4\n")
    with pytest.raises(ConfigError, match=r"\[labkit\] table.*\['workers'\]"):
        load_settings(root)
    write_config(root, "labkit = 3\n")
    with pytest.raises(ConfigError, match=r"\[labkit\] table"):
        load_settings(root)


def test_an_unknown_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown settings \['wrkers'\]"):
        load_settings(tmp_path, wrkers=3)


@pytest.mark.parametrize("line, name", [
    ('workers = "many"', "workers"),
    ("workers = true", "workers"),
    ("workers = 2.5", "workers"),
    ("workers = [2]", "workers"),
    ('run_time_limit = "an hour"', "run_time_limit"),
    ("run_time_limit = nan", "run_time_limit"),
    ("run_time_limit = inf", "run_time_limit"),
    ("stale_after = false", "stale_after"),
    ("kernel_start_timeout = 1.5", "kernel_start_timeout"),
    ("database_url = 5", "database_url"),
    ("user = {name = 'x'}", "user"),
    ("storage_root = 3", "storage_root"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_setting(tmp_path: Path, line: str, name: str) -> None:
    root = write_config(tmp_path / "lab", f"[labkit]\n{line}\n")
    with pytest.raises(ConfigError, match=f"setting '{name}' has the unusable value"):
        load_settings(root)


@pytest.mark.parametrize("line, message", [
    ("workers = -1", "workers must be 0 or more"),
    ("run_time_limit = 0", "run_time_limit must be a positive number"),
    ("run_time_limit = -5", "run_time_limit must be a positive number"),
    ("heartbeat_interval = 0", "heartbeat_interval must be a positive number"),
    ("stale_after = -1", "stale_after must be a positive number"),
    ("kernel_start_timeout = 0", "kernel_start_timeout must be a positive number"),
])
def test_an_out_of_range_value_is_refused(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path / "lab", f"[labkit]\n{line}\n"))


@pytest.mark.parametrize("name, value", [("LABKIT_WORKERS", "two"), ("LABKIT_WORKERS", "1.5"),
                                         ("LABKIT_RUN_TIME_LIMIT", "soon"), ("LABKIT_STALE_AFTER", "nan")])
def test_a_bad_environment_value_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    setting = name.removeprefix("LABKIT_").lower()
    with pytest.raises(ConfigError, match=f"setting '{setting}' has the unusable value '{value}'"):
        load_settings(tmp_path)


def test_zero_workers_is_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_WORKERS", "0")
    assert load_settings(tmp_path).workers == 0


@pytest.mark.parametrize("text", ["[labkit\nworkers = 2\n", "[labkit]\nworkers = \n",
                                  "[labkit]\nworkers = 2\nworkers = 3\n"])
def test_invalid_toml_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    root = write_config(tmp_path / "lab", text)
    with pytest.raises(ConfigError, match=rf"{CONFIG_FILE} is not valid TOML"):
        load_settings(root)


def test_a_config_error_is_a_labkit_error_so_the_cli_reports_it_plainly() -> None:
    assert issubclass(ConfigError, LabkitError) and issubclass(ConfigError, ValueError)
