"""One of the writer processes of test_concurrency.py: opens the lab named on the command line, waits
for the start signal, then adds versions and submits runs as fast as it can, counting every error.

    python concurrent_writer.py LAB_DIR INDEX VERSIONS RUNS START_FILE RESULT_FILE
    python concurrent_writer.py --first-run LAB_DIR READY_FILE RESULT_FILE

Each error is recorded (its type and message) and the writer carries on, so the parent can count
"database is locked" errors and lost writes instead of seeing only the first failure."""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import labkit


MODEL_VERSIONS = 10  # the lab has this many versions of "hh": the writers' first runs of each race


def dataset(index: int, i: int) -> bytes:
    """A small CSV, different for every writer and version (a version must change something)."""
    return f"time (ms),voltage (mV)\n0,{index}\n1,{i}\n".encode()


def first_run(lab_dir: str, ready_file: str, result_file: str) -> None:
    """Submit one run of hh v1 on test, saying when the lab is open: the first run of that pair."""
    lab = labkit.Lab.open(lab_dir)
    Path(ready_file).touch()
    try:
        result = {"run": lab.run("hh", "test", model_version=1).id}
    except Exception as err:
        result = {"error": f"{type(err).__name__}: {err}"}
    lab.close()
    Path(result_file).write_text(json.dumps(result))


def main() -> None:
    if sys.argv[1] == "--first-run":
        return first_run(*sys.argv[2:5])
    lab_dir, index, versions, runs, start_file, result_file = sys.argv[1:7]
    index, versions, runs = int(index), int(versions), int(runs)
    lab = labkit.Lab.open(lab_dir)
    saved: list[dict[str, object]] = []
    submitted: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + 120
    while not Path(start_file).exists():  # all writers start together
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.01)
    started = time.monotonic()
    for i in range(max(versions, runs)):
        if i < runs:
            try:
                submitted.append(lab.run("hh", "test", {"sleep": float(index * 1000 + i)},
                                          model_version=i % MODEL_VERSIONS + 1).id)
            except Exception as err:
                errors.append(f"run step {i}: {type(err).__name__}: {err}\n{traceback.format_exc()}")
        if i < versions:
            # even steps: one dataset every writer adds to (saves of one entity take turns);
            # odd steps: this writer's own dataset
            name = "shared" if i % 2 == 0 else f"own{index}"
            try:
                v = lab.add_dataset({"data.csv": dataset(index, i)}, name=name, protocol="test",
                                    message=f"writer {index} step {i}").version
                saved.append({"entity": name, "number": v.number, "commit": v.commit})
            except Exception as err:  # counted, not hidden: the parent asserts there are none
                errors.append(f"save {name} step {i}: {type(err).__name__}: {err}\n{traceback.format_exc()}")
    elapsed = time.monotonic() - started
    lab.close()
    Path(result_file).write_text(json.dumps({"saved": saved, "runs": submitted, "errors": errors,
                                             "elapsed": elapsed}))


if __name__ == "__main__":
    main()
