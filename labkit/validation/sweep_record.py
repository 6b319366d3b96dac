"""The sweep's record: the verdict of every finished sweep run, kept in a JSON file under the run's key
(model file, notebook, parameters and simulation code, as the validation ledger keys its entries), so a
sweep of many worker-hours can go on over several sittings and labs. A pair whose key still matches is
reported from the record without running; any change to its inputs or code makes it run again.

Labkit failures and unfinished runs are never recorded: they may be the machine's doing (a time limit,
a lost worker), so the next sitting tries them again."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InvalidInput
from .ledger import KeyedFile

FORMAT = 1


@dataclass(frozen=True)
class RecordedVerdict:
    model: str
    protocol: str   # the Web Lab protocol's name
    key: str        # validation.ledger.entry_key of the run's inputs and code
    verdict: str
    reason: str
    run: str        # the run's id in the lab that made it
    seconds: float | None
    recorded: str   # when (UTC, ISO 8601)


class SweepRecord(KeyedFile[RecordedVerdict]):
    """The record file: each pair's verdict, sorted, one entry a line."""

    @classmethod
    def load(cls, path: Path) -> SweepRecord:
        """Read ``path``; a file that does not exist yet is an empty record."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT or data.get("kind") != "sweep":
                raise ValueError(f"kind {data.get('kind')!r} format {data.get('format')!r}, expected a sweep "
                                 f"record of format {FORMAT}")
            entries = {(e["model"], e["protocol"]): RecordedVerdict(**e) for e in data["entries"]}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidInput(f"{path} is not a labkit sweep record ({error}); give another --ledger file, "
                               "or delete this one to start a new record") from error
        return cls(path, entries)

    def record(self, model: str, protocol: str, key: str, *, verdict: str, reason: str, run: str,
               seconds: float | None) -> None:
        self.entries[(model, protocol)] = RecordedVerdict(
            model, protocol, key, verdict, reason, run, seconds,
            datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        lines = ",\n".join(json.dumps(asdict(e), separators=(",", ":")) for _, e in sorted(self.entries.items()))
        temporary.write_text(f'{{"kind": "sweep", "format": {FORMAT}, "entries": [\n{lines}\n]}}\n')
        temporary.replace(self.path)
