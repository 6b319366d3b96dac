"""Throughput of a scale-out lab (PostgreSQL + RabbitMQ, workers in folders of their own) with one
worker against two, on the same batch of experiments in the same run:

    python bench/scaleout_throughput.py [--runs 8] [--paces 100] [--database postgresql+psycopg://...]
                                        [--broker amqp://guest:guest@127.0.0.1:5672//]

The batch is the demo's steady-pacing protocol on Beeler-Reuter 1977, each run capped at ``--paces``
beats. Each configuration first runs one warm-up experiment per worker (kernels, compiled
simulations), then the clock runs from submitting the batch to its last run finishing. The lab gets a
schema of its own in the database and a queue of its own on the broker; both are removed afterwards.
On a machine with fewer free cores than workers, the ratio shows the machine, not labkit.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from kombu import Connection

import labkit
from labkit.demo.build import DEMO_MODELS, STANDARD_PROTOCOLS


def timed_batch(lab: labkit.Lab, workers: int, runs: int, paces: int) -> float:
    """Seconds for ``runs`` experiments on ``workers`` freshly started workers (after a warm-up)."""
    lab.start_workers(workers)
    try:
        warm = lab.wait([lab.run("br77", "steady_pacing", {"max_paces": paces}) for _ in range(workers)],
                        timeout=600)
        assert all(r.status == "success" for r in warm), [r.error for r in warm]
        started = time.perf_counter()
        batch = [lab.run("br77", "steady_pacing", {"max_paces": paces}) for _ in range(runs)]
        done = lab.wait(batch, timeout=3600)
        elapsed = time.perf_counter() - started
        failed = [r for r in done if r.status != "success"]
        if failed:
            raise SystemExit(f"{len(failed)} runs did not succeed: {failed[0].error}")
        return elapsed
    finally:
        lab.stop_workers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--paces", type=int, default=100)
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin_url = args.database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    settings = {"database_url": f"{args.database}?options=-csearch_path%3D{schema}", "broker_url": args.broker,
                "default_queue": f"labkit-{schema}", "isolate_workers": True}
    try:
        with tempfile.TemporaryDirectory() as folder, labkit.Lab.open(Path(folder) / "lab", **settings) as lab:
            lab.add_model(DEMO_MODELS / "beeler_reuter_1977.cellml", name="br77")
            lab.add_protocol(STANDARD_PROTOCOLS / "steady_pacing.ipynb")
            print(f"{args.runs} runs of steady_pacing (max_paces={args.paces}) on Beeler-Reuter 1977, "
                  f"PostgreSQL + RabbitMQ, {os.cpu_count()} cores")
            one = timed_batch(lab, 1, args.runs, args.paces)
            print(f"1 worker : {one:7.1f} s  ({args.runs / one * 60:5.1f} runs/min)")
            two = timed_batch(lab, 2, args.runs, args.paces)
            print(f"2 workers: {two:7.1f} s  ({args.runs / two * 60:5.1f} runs/min)")
            print(f"throughput ratio, 2 workers / 1 worker: {one / two:.2f}")
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
        with Connection(args.broker) as broker:
            broker.default_channel.queue_delete(f"labkit-{schema}")


if __name__ == "__main__":
    main()
