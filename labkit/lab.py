"""``Lab``: the one object a scientist uses, in JupyterLab or through the CLI."""
from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import CONFIG_FILE, Settings, load_settings
from .errors import InvalidInput
from .experiments import Experiments, PlannedExperiment, RunInfo
from .protocols import Compatibility, Interface
from .queue import EmbeddedWorkers, make_celery
from .queue.app import declare_queues
from .results import Prediction
from .results.store import prediction_folder
from .store.db import Database
from .store.entities import LATEST, EntityStore, VersionInfo

Ref = str | int


@dataclass(frozen=True)
class SaveResult:
    """A saved version and the experiments it implies (run them with ``Lab.run_planned``)."""

    version: VersionInfo
    planned: list[PlannedExperiment] = field(default_factory=list)


class Lab:
    """A lab: its entities, experiments, workers and predictions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        for folder in (settings.repositories, settings.results, settings.scratch, settings.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        self.db.upgrade()
        self.store = EntityStore(self.db, settings.repositories)
        self.celery = make_celery(settings)
        self.experiments = Experiments(settings, self.db, self.store, self.celery)
        self.workers = EmbeddedWorkers(settings, lambda: declare_queues(self.celery, settings))

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, **overrides: Any) -> "Lab":
        """Open (creating if needed) the lab in ``path``; settings from its labkit.toml and LABKIT_*."""
        root = Path(path or os.environ.get("LABKIT_LAB") or Path.cwd())
        root.mkdir(parents=True, exist_ok=True)
        if not (root / CONFIG_FILE).exists():
            (root / CONFIG_FILE).write_text("[labkit]\n# database_url, broker_url, result_backend, storage_root,\n"
                                            "# workers, run_time_limit: see docs/configuration.md\n")
        return cls(load_settings(root, **overrides))

    def as_user(self, user: str) -> "Lab":
        """The same lab seen and used by ``user`` (a web request's identity, say): it shares this
        lab's database, store and queue, and everything it does is done, and checked, as ``user``."""
        view = copy.copy(self)
        view.settings = replace(self.settings, user=user)
        view.experiments = Experiments(view.settings, self.db, self.store, self.celery)
        return view

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entities --------------------------------------------------------------------------------
    def _save(self, kind: str, source: str | os.PathLike | dict[str, bytes], name: str | None,
              message: str, parent: str | None, tag: str | None, protocol: str | None = None) -> SaveResult:
        if isinstance(source, dict):
            files, main = source, None
            if not name:
                raise InvalidInput("give a name when saving files from memory")
        else:
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"{path} is not a file")
            files, main = {path.name: path.read_bytes()}, path.name
            name = name or path.stem
        if tag:
            self.store.check_tag(kind, name, tag)  # refuse a bad tag before saving anything
        version = self.store.save(kind, name, files, author=self.settings.user, message=message,
                                  main_file=main, parent=parent, protocol=protocol)
        if tag:
            version = self.store.tag(kind, version.entity, version.number, tag)
        planned = self.experiments.plan_for(version) if kind in ("model", "protocol") else []
        return SaveResult(version, planned)

    def add_model(self, source: str | os.PathLike | dict[str, bytes], *, name: str | None = None,
                  message: str = "", parent: str | None = None, tag: str | None = None) -> SaveResult:
        """Add a CellML model (or a new version of one); it is checked and its annotations indexed."""
        return self._save("model", source, name, message, parent, tag)

    def add_protocol(self, source: str | os.PathLike | dict[str, bytes], *, name: str | None = None,
                     message: str = "", parent: str | None = None, tag: str | None = None) -> SaveResult:
        """Add a protocol notebook (or a new version); it must pass the protocol check."""
        return self._save("protocol", source, name, message, parent, tag)

    def add_dataset(self, source: str | os.PathLike | dict[str, bytes], *, protocol: str,
                    name: str | None = None, message: str = "", parent: str | None = None,
                    tag: str | None = None) -> SaveResult:
        """Add a CSV data set (``name (units)`` headers) measuring ``protocol``'s outputs."""
        return self._save("dataset", source, name, message, parent, tag, protocol=protocol)

    def names(self, kind: str) -> list[str]:
        return self.store.names(kind)

    def versions(self, kind: str, name: str) -> list[VersionInfo]:
        return self.store.versions(kind, name)

    def version(self, kind: str, name: str, ref: Ref = LATEST) -> VersionInfo:
        return self.store.version(kind, name, ref)

    def tag(self, kind: str, name: str, ref: Ref, tag: str) -> VersionInfo:
        return self.store.tag(kind, name, ref, tag)

    def files(self, kind: str, name: str, ref: Ref = LATEST) -> list[str]:
        return self.store.files(kind, name, ref)

    def read_file(self, kind: str, name: str, ref: Ref = LATEST, file: str | None = None) -> bytes:
        return self.store.read(kind, name, ref, file)

    def annotations(self, model: str, ref: Ref = LATEST) -> dict[str, str]:
        """oxmeta term -> ``component.variable`` for a model version."""
        return {a.term: f"{a.component}.{a.variable}" for a in self.store.annotations(model, ref)}

    def models_with_term(self, term: str) -> list[str]:
        return self.store.models_with_term(term)

    def interface(self, protocol: str, ref: Ref = LATEST) -> Interface:
        return Interface.from_json(self.store.interface(self.version("protocol", protocol, ref).id))

    def dataset(self, name: str, ref: Ref = LATEST) -> dict[str, Any]:
        return self.store.dataset(name, ref)

    # -- experiments -----------------------------------------------------------------------------
    def compatibility(self, model: str, protocol: str, model_version: Ref = LATEST,
                      protocol_version: Ref = LATEST) -> Compatibility:
        return self.experiments.compatibility(self.version("model", model, model_version),
                                              self.version("protocol", protocol, protocol_version))

    def run(self, model: str, protocol: str, parameters: dict[str, Any] | None = None, *,
            model_version: Ref = LATEST, protocol_version: Ref = LATEST, queue: str | None = None) -> RunInfo:
        """Queue one protocol version on one model version."""
        return self.experiments.submit(self.version("model", model, model_version),
                                       self.version("protocol", protocol, protocol_version),
                                       parameters, user=self.settings.user, queue=queue)

    def run_matrix(self, models: Iterable[str] | None = None, protocols: Iterable[str] | None = None,
                   *, only_compatible: bool = True) -> list[RunInfo]:
        """Queue every (model, protocol) pair; by default only compatible pairs."""
        runs = []
        for protocol in (protocols or self.names("protocol")):
            for model in (models or self.names("model")):
                if only_compatible and not self.compatibility(model, protocol).compatible:
                    continue
                runs.append(self.run(model, protocol))
        return runs

    def run_planned(self, saved: SaveResult) -> list[RunInfo]:
        return [self.experiments.submit(p.model, p.protocol, user=self.settings.user) for p in saved.planned]

    def status(self, run_id: str) -> RunInfo:
        return self.experiments.get(run_id)

    def runs(self, **filters: Any) -> list[RunInfo]:
        return self.experiments.list(**filters)

    def cancel(self, run_id: str) -> RunInfo:
        return self.experiments.cancel(run_id)

    def wait(self, runs: Iterable[str | RunInfo], *, timeout: float | None = None,
             on_change: Callable[[RunInfo], None] | None = None) -> list[RunInfo]:
        ids = [r.id if isinstance(r, RunInfo) else r for r in runs]
        return self.experiments.wait(ids, timeout=timeout, on_change=on_change)

    def prediction(self, run_id: str) -> Prediction:
        info = self.status(run_id)
        if not info.results_path:
            raise InvalidInput(f"run {run_id} has no prediction (status {info.status})"
                               + (f": {info.error}" if info.error else ""))
        folder = prediction_folder(self.db, self.settings.results, run_id, info.results_path)
        return Prediction(run_id, info.status, folder)

    # -- workers ---------------------------------------------------------------------------------
    def start_workers(self, count: int | None = None, *, wait: bool = True) -> None:
        self.workers.start(count)
        if wait:
            self.workers.wait_ready()

    def stop_workers(self) -> None:
        self.workers.stop()
