"""A corpus of hostile protocols: each notebook attacks the worker, the lab or other runs from inside
its run. ``test_hostile_protocols.py`` runs every one through the queue and checks from outside the sandbox
that the attack failed. The bodies get the real targets (paths, ports) by ``str.format``; where an
attack succeeds it prints a ``PWNED`` line or the secret it read, which the tests look for. The
markers are split in the source (``"PW" "NED"``) so that only what a notebook prints can match."""
from __future__ import annotations

from dataclasses import dataclass

from notebooks import protocol_notebook

INTERFACE = """
title: Hostile protocol {name}
description: An attack on the lab, for the sandbox tests.
requires: [membrane_voltage]
outputs:
  peak: {{units: mV, description: any number}}
time_limit: {time_limit}
"""

# A small valid Myokit model, and another with the same shape of text but other equations: the
# cache-poisoning attack asks the worker to store B's compiled code under A's key.
TINY_MODEL_A = """[[model]]
tiny.x = 1

[tiny]
t = 0 [ms] bind time
dot(x) = -x / 10
"""
TINY_MODEL_B = """[[model]]
tiny.x = 1

[tiny]
t = 0 [ms] bind time
dot(x) = 100 + x
"""

ENV = """
import os
for key, value in sorted(os.environ.items()):
    print(key, "=", value)
"""

LAB_DATABASE_FILE = """
import os
for path in {db_files!r}:
    try:
        data = open(path, "rb").read()
        print("PW" "NED read", path, len(data))
        print(data.decode("latin-1"))
    except OSError as err:
        print("block" "ed:", path, err)
"""

OPEN_LAB = """
import labkit
try:
    lab = labkit.Lab.open({lab_root!r}, database_url={database_url!r})
    names = lab.names("model")
    print("models seen:", names)
    if "tt06" in names:
        print("PW" "NED opened the operator's lab")
    lab.add_user("mallory", moderator=True)
    print("token", lab.create_token("mallory"))
    print(lab.read_file("model", "victim_model").decode())
except Exception as err:
    print("block" "ed:", type(err).__name__, err)
"""

PRIVATE_MODEL = """
import os, subprocess
for root, dirs, files in os.walk({lab_root!r}):
    for name in files:
        try:
            print("PW" "NED", os.path.join(root, name), open(os.path.join(root, name), "rb").read()[:2000])
        except OSError as err:
            print("block" "ed:", err)
done = subprocess.run(["git", "--git-dir", {victim_repo!r}, "log", "-p", "--all"], capture_output=True, text=True)
print(done.stdout, done.stderr)
"""

HOST_FILE = """
for path in ({secret_file!r}, "/etc/shadow", "/root/.bash_history", "/proc/1/environ"):
    try:
        print("PW" "NED", path, open(path).read())
    except OSError as err:
        print("block" "ed:", path, err)
"""

CONNECT = """
import socket
for port in {ports!r}:
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("127.0.0.1", port))
        print("PW" "NED connected to", port)
        s.sendall(b"hello from a protocol")
    except OSError as err:
        print("block" "ed:", port, err)
    finally:
        s.close()
"""

WRITE_OUTSIDE = """
for path in {targets!r}:
    try:
        with open(path, "w") as f:
            f.write("PW" "NED")
        print("wro" "te", path)
    except OSError as err:
        print("block" "ed:", path, err)
"""

FORK_BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""

MEMORY_HOG = """
blocks = []
while True:
    blocks.append(bytearray(64 * 2**20))
"""

FILL_DISK = """
import os
i = 0
while True:
    for folder in (output_dir, "/tmp"):
        try:
            with open(os.path.join(folder, f"fill{{i}}.bin"), "wb") as f:
                f.write(os.urandom(2**20))
        except OSError:
            pass
        i += 1
"""

HUGE_OUTPUTS = """
import numpy as np
from labkit.results import OutputWriter
OutputWriter(output_dir).save("peak", np.arange(1_000_000) * np.pi, units="mV")
"""

SYMLINK_OUTPUT = """
import json, os
os.makedirs(output_dir, exist_ok=True)
os.symlink({secret_file!r}, os.path.join(output_dir, "peak.csv"))
with open(os.path.join(output_dir, "outputs.json"), "w") as f:
    json.dump({{"peak": {{"units": "mV", "shape": [], "description": "", "file": "peak.csv"}}}}, f)
"""

GRANDCHILD = """
import os, subprocess
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        subprocess.Popen(["/bin/sh", "-c", "sleep {sleep_marker}"], start_new_session=True)
    os._exit(0)
from labkit.results import OutputWriter
OutputWriter(output_dir).save("peak", 1.0, units="mV")
"""

POISON_CACHE = """
import os
import myokit
from labkit.sim.cache import structure_key
cache = os.environ.get("LABKIT_SIM_CACHE", "")
for target in (os.path.join(cache, "evil.zip"), os.path.join({cache_dirs!r}[0], "evil.zip")):
    try:
        open(target, "wb").write(b"not a simulation")
        print("PW" "NED wrote", target)
    except OSError as err:
        print("block" "ed:", target, err)
requests = os.environ.get("LABKIT_SIM_CACHE_REQUESTS")
key_a = structure_key(myokit.parse_model({model_a!r}))
if requests:  # ask the worker to store model B's code under model A's key
    with open(os.path.join(requests, key_a + ".mmt"), "w") as f:
        f.write({model_b!r})
from labkit.results import OutputWriter
OutputWriter(output_dir).save("peak", 1.0, units="mV")
"""

IGNORE_SIGTERM = """
import signal
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass
"""


@dataclass(frozen=True)
class Attack:
    name: str
    body: str
    time_limit: float = 60

    def notebook(self, **targets: object) -> bytes:
        return protocol_notebook(
            interface=INTERFACE.format(name=self.name, time_limit=self.time_limit),
            body=self.body.format(**targets),
            parameters='model_path = "model.cellml"\noutput_dir = "outputs"\n')


CORPUS = [
    Attack("env", ENV),
    Attack("lab_database_file", LAB_DATABASE_FILE),
    Attack("open_lab", OPEN_LAB),
    Attack("private_model", PRIVATE_MODEL),
    Attack("host_file", HOST_FILE),
    Attack("connect_database", CONNECT.replace("{ports!r}", "[5432]")),
    Attack("connect_broker", CONNECT.replace("{ports!r}", "[5672]")),
    Attack("connect_local_port", CONNECT.replace("{ports!r}", "[{listener_port}]")),
    Attack("write_outside", WRITE_OUTSIDE),
    Attack("fork_bomb", FORK_BOMB),
    Attack("memory_hog", MEMORY_HOG),
    Attack("fill_disk", FILL_DISK),
    Attack("huge_outputs", HUGE_OUTPUTS),
    Attack("symlink_output", SYMLINK_OUTPUT),
    Attack("grandchild", GRANDCHILD),
    Attack("poison_cache", POISON_CACHE),
    Attack("ignore_sigterm", IGNORE_SIGTERM, time_limit=8),
]
