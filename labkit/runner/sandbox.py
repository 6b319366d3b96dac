"""How a run's papermill and kernel are started: inside a bubblewrap sandbox, or (trusted only) not.

A protocol is arbitrary Python from whoever uploaded it, so by default everything a run starts lives
in a sandbox made by Debian's ``bubblewrap`` (see docs/security.md for why that tool):

* new PID, network, IPC and UTS namespaces: no network at all, and when the sandbox's first process
  ends (or bwrap is killed, or the worker dies) the kernel ends every process left inside;
* a read-only root of its own with nothing but ``/usr``, the Python environment and labkit, the
  run's inputs, and its model's part of the compiled-simulation cache; one writable folder (the
  run's ``work/``, also its ``/tmp`` and ``/dev/shm``);
* an unprivileged user with no capabilities: a worker running as root drops to a uid of its own per
  concurrent run (``sandbox_uid_base`` + slot) with ``setpriv``, so process limits of concurrent runs
  are separate; any other worker gets a user namespace from bwrap (with no further user namespaces
  allowed in it), mapped onto its own unprivileged uid, which all its runs then share;
* an environment from an allow-list (no ``LABKIT_*`` setting, credential or token);
* resource limits (``Limits``) set with ``setrlimit`` before bwrap starts and watched from outside.

``Launcher`` is the one object that decides this (chosen by ``launcher_for``), so ``execute.py`` and
``child.py`` never branch on whether a sandbox is in use. A plan is plain data (argv, environment,
paths): ``tests/runner/test_sandbox_plan.py`` checks it without starting anything.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import resource
import shutil
import site
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings

# Where a run's folders appear inside its sandbox.
INSIDE_INPUTS = Path("/run/labkit/inputs")
INSIDE_WORK = Path("/run/labkit/work")
INSIDE_CACHE = Path("/run/labkit/sim-cache")
UID_SLOTS = 64
# Variables passed from the worker's environment into a sandbox, because they configure the tools in
# it and carry no secret. Everything else is dropped.
PASSED_ENV = ("LANG", "LC_ALL", "TZ", "JUPYTER_PATH")


@dataclass(frozen=True)
class Limits:
    """What one run may use. Each is enforced twice: by the kernel (``apply``, in the child before
    bwrap starts) and by the worker watching from outside (``exceeded``), which names the limit."""

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int
    processes: int
    file_bytes: int
    folder_bytes: int
    folder_files: int
    output_bytes: int

    @classmethod
    def for_run(cls, settings: Settings, time_limit: float) -> "Limits":
        wall = min(time_limit, settings.run_time_limit)
        mb = 1024 * 1024
        return cls(wall_seconds=wall, cpu_seconds=int(min(settings.run_cpu_seconds, 2 * wall)) + 1,
                   memory_bytes=settings.run_memory_mb * mb, processes=settings.run_processes,
                   file_bytes=settings.run_file_mb * mb, folder_bytes=settings.run_folder_mb * mb,
                   folder_files=settings.run_folder_files, output_bytes=settings.run_outputs_mb * mb)

    def apply(self) -> None:
        """Set the per-process limits on the calling process; its children inherit them."""
        def set_limit(which: int, soft: int, hard: int | None = None) -> None:
            resource.setrlimit(which, (soft, soft if hard is None else hard))
        # SIGXCPU at the soft limit (a protocol may ignore it), SIGKILL at the hard one
        set_limit(resource.RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 5)
        set_limit(resource.RLIMIT_AS, self.memory_bytes)
        set_limit(resource.RLIMIT_NPROC, self.processes)
        set_limit(resource.RLIMIT_FSIZE, self.file_bytes)
        set_limit(resource.RLIMIT_CORE, 0)
        set_limit(resource.RLIMIT_NOFILE, 1024)

    def exceeded(self, usage: "Usage") -> str | None:
        """The message for the first limit ``usage`` has reached, or None."""
        mb = 1024 * 1024
        if usage.cpu_seconds > self.cpu_seconds:
            return (f"the run used more than its CPU time limit of {self.cpu_seconds} s "
                    "(setting run_cpu_seconds, and at most twice its wall-time limit)")
        if usage.processes >= self.processes:
            return (f"the run reached its limit of {self.processes} processes (threads included; "
                    "setting run_processes)")
        if usage.memory_bytes > self.memory_bytes:
            return f"the run used more than its memory limit of {self.memory_bytes // mb} MB (setting run_memory_mb)"
        if usage.folder_bytes > self.folder_bytes:
            return (f"the run wrote more than {self.folder_bytes // mb} MB into its folder "
                    "(setting run_folder_mb)")
        if usage.folder_files > self.folder_files:
            return f"the run made more than {self.folder_files} files (setting run_folder_files)"
        return None


@dataclass(frozen=True)
class Usage:
    """What a run's process tree and folder use now, measured from outside."""

    cpu_seconds: float = 0.0
    memory_bytes: int = 0
    processes: int = 0
    folder_bytes: int = 0
    folder_files: int = 0


@dataclass(frozen=True)
class RunPaths:
    """A run's folders as the worker sees them (``scratch``) and as its notebook sees them."""

    scratch: Path  # the worker's: log.txt lives here, out of the sandbox's reach
    inputs: Path  # scratch/inputs: model/ and protocol/, read-only inside
    work: Path  # scratch/work: the only writable folder (outputs/, tmp/, executed.ipynb)
    inside_inputs: Path
    inside_work: Path

    @property
    def outputs(self) -> Path:
        return self.work / "outputs"

    @property
    def executed(self) -> Path:
        return self.work / "executed.ipynb"

    @property
    def pending_compiles(self) -> Path:
        """Where a run leaves the model structures it had to compile (sim/cache.py), for the worker."""
        return self.work / "sim-cache-requests"

    def inside(self, path: Path) -> Path:
        """Where ``path`` (under ``inputs`` or ``work``) appears to the notebook."""
        for outer, inner in ((self.inputs, self.inside_inputs), (self.work, self.inside_work)):
            if path == outer or outer in path.parents:
                return inner / path.relative_to(outer)
        raise ValueError(f"{path} is not a folder of the run")


class Launcher:
    """Starts one run's command. Subclasses decide the isolation; the lifecycle is child.py's."""

    name = "trusted"
    sandboxed = False

    def paths(self, scratch: Path) -> RunPaths:
        return RunPaths(scratch, scratch / "inputs", scratch / "work", scratch / "inputs", scratch / "work")

    @contextlib.contextmanager
    def session(self, paths: RunPaths, limits: Limits, settings: Settings,
                cache: Path | None = None) -> Iterator["Session"]:
        """Prepare the run's folders and yield how to start commands in them."""
        _make_work(paths, owner=None)
        yield Session(self, paths, limits, settings, uid=None, cache=cache)

    def wrap(self, session: "Session", argv: list[str], env: dict[str, str]) -> list[str]:
        return argv


@dataclass
class Session:
    """One run's launch context: the argv wrapper, the environment and the limits to apply."""

    launcher: Launcher
    paths: RunPaths
    limits: Limits
    settings: Settings
    uid: int | None
    cache: Path | None = None  # this run's part of the compiled-simulation cache (its model's)

    def command(self, argv: list[str], extra_env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """The argv to start and the environment to start it with."""
        env = sandbox_environment(self.paths, extra_env, self.cache, self.launcher.sandboxed)
        return self.launcher.wrap(self, argv, env), ({} if self.launcher.sandboxed else env)

    def preexec(self) -> None:
        """In the child before exec: own session, die with the worker, limits."""
        os.setsid()
        try:
            import ctypes
            import signal
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
        self.limits.apply()


class BubblewrapLauncher(Launcher):
    """The default: bwrap namespaces, an unprivileged uid, allow-listed environment, limits."""

    name = "bubblewrap"
    sandboxed = True

    def __init__(self, bwrap: str) -> None:
        self.bwrap = bwrap

    def paths(self, scratch: Path) -> RunPaths:
        return RunPaths(scratch, scratch / "inputs", scratch / "work", INSIDE_INPUTS, INSIDE_WORK)

    @contextlib.contextmanager
    def session(self, paths: RunPaths, limits: Limits, settings: Settings,
                cache: Path | None = None) -> Iterator[Session]:
        with _sandbox_uid(settings) as uid:
            _make_work(paths, owner=uid)
            yield Session(self, paths, limits, settings, uid, cache)

    def wrap(self, session: Session, argv: list[str], env: dict[str, str]) -> list[str]:
        return bwrap_argv(self.bwrap, session.paths, argv, env, session.uid, session.cache)


def bwrap_argv(bwrap: str, paths: RunPaths, argv: list[str], env: dict[str, str], uid: int | None,
               cache: Path | None) -> list[str]:
    """The full bwrap command line for ``argv`` (see the module doc for what each part is for)."""
    args = [bwrap, "--die-with-parent", "--new-session", "--clearenv"]
    if uid is None:  # an unprivileged worker: a user namespace (none nested in it), no capability
        args += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    else:  # root worker: no user namespace (uid 0 would map onto root); setpriv drops to `uid` below
        args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]
    for name, value in sorted(env.items()):
        args += ["--setenv", name, value]
    args += _system_mounts()
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += _parents(paths.inside_inputs) + _parents(paths.inside_work) + _parents(INSIDE_CACHE)
    args += ["--bind", str(paths.work), str(paths.inside_work), "--bind", str(paths.work / "tmp"), "/tmp",
             "--bind", str(paths.work / "shm"), "/dev/shm",  # counted with the folder, not in memory
             "--ro-bind", str(paths.inputs), str(paths.inside_inputs)]
    if cache is not None and cache.is_dir():
        args += ["--ro-bind", str(cache), str(INSIDE_CACHE)]
    # after /tmp, so that a Python installation or kernelspec folder under /tmp is not hidden by it
    for source in _python_roots():
        args += _parents(source) + ["--ro-bind", str(source), str(source)]
    for folder in _jupyter_path(env):
        args += _parents(folder) + ["--ro-bind", str(folder), str(folder)]
    args += ["--remount-ro", "/", "--chdir", str(paths.inside_work)]  # the sandbox's own root too
    if uid is not None:
        args += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return args + argv


def sandbox_environment(paths: RunPaths, extra: dict[str, str], cache: Path | None,
                        sandboxed: bool) -> dict[str, str]:
    """The whole environment of a run's processes: an allow-list, never the worker's own variables."""
    home = paths.inside_work / "tmp" if not sandboxed else Path("/tmp")
    python_bin = str(Path(sys.executable).parent)
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env.update({
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home),
        "USER": "protocol", "LOGNAME": "protocol", "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(home / ".mpl"),
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
        "JUPYTER_RUNTIME_DIR": str(home / ".jupyter-runtime"), "JUPYTER_DATA_DIR": str(home / ".jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "IPYTHONDIR": str(home / ".ipython"),
        # one thread per numerical library: a run's CPU share is its processes, not hidden threads
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MB of address space per thread otherwise
    })
    if sandboxed:  # read-only inside; what the run compiles is left for the worker to add
        env["LABKIT_SIM_CACHE"] = str(INSIDE_CACHE) if cache is not None and cache.is_dir() else "off"
        env["LABKIT_SIM_CACHE_REQUESTS"] = str(paths.inside(paths.pending_compiles))
    else:
        env["LABKIT_SIM_CACHE"] = str(cache) if cache is not None else "off"
    env.update(extra)
    return env


def cache_dir(settings: Settings, model_commit: str) -> Path | None:
    """The compiled-simulation cache of one model version on this worker (written only by the
    worker's own code). One folder per model version: a zip holds its pickled model, so a run may see
    the compiled forms of its own model only, never those of other people's private models."""
    from ..sim.cache import cache_dir as simulation_cache  # imports Myokit: only where runs execute
    if not all(c in "0123456789abcdef" for c in model_commit) or not model_commit:
        raise ValueError(f"not a commit: {model_commit!r}")
    root = simulation_cache(default=settings.storage_root / "cache" / "sim")
    return None if root is None else root / model_commit


def remove_folder(folder: Path) -> None:
    """Delete a run's folder, even where its protocol took away the permissions of what it made."""
    def make_writable_and_retry(function, path, _exc_info):  # type: ignore[no-untyped-def]
        try:
            os.chmod(os.path.dirname(path), 0o700)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
            function(path)
        except OSError:
            pass
    shutil.rmtree(folder, onerror=make_writable_and_retry)


def _make_work(paths: RunPaths, owner: int | None) -> None:
    """The run's only writable folder, owned by its sandbox user (the inputs stay the worker's)."""
    for folder in (paths.work, paths.outputs, paths.work / "tmp", paths.work / "shm", paths.pending_compiles):
        folder.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(folder, owner, owner)
            folder.chmod(0o711)  # bwrap (as root, no capabilities) must be able to enter it
    for path in [paths.inputs, *paths.inputs.rglob("*")]:  # readable by the sandbox user, not writable
        path.chmod(0o755 if path.is_dir() else 0o644)
    paths.scratch.chmod(0o755)


def _system_mounts() -> list[str]:
    """``/usr`` (compiler and shared libraries included) read-only, and the few files of /etc that the
    dynamic linker and the compiler read; the rest of /etc (passwords, keys) is absent."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
                 "/etc/localtime"):
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    return args


@functools.lru_cache(maxsize=1)
def _python_roots() -> tuple[Path, ...]:
    """The Python installation(s) and labkit's own package folder, read-only in every sandbox."""
    import labkit
    candidates = [Path(sys.base_prefix), Path(sys.prefix), *map(Path, site.getsitepackages()),
                  Path(labkit.__file__).resolve().parent]
    roots: list[Path] = []
    for path in sorted({p.resolve() for p in candidates if p.exists()}, key=lambda p: len(p.parts)):
        if _is_system(path):
            continue  # already there
        if not any(root == path or root in path.parents for root in roots):
            roots.append(path)
    return tuple(roots)


def _jupyter_path(env: dict[str, str]) -> list[Path]:
    """Extra kernelspec folders the operator named with ``JUPYTER_PATH``, read-only inside."""
    return [Path(p) for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p and Path(p).is_dir()]


def _parents(path: Path) -> list[str]:
    """Create ``path``'s parent folders inside the sandbox world-traversable (bwrap copies the
    host's modes, and a parent such as root's 0700 home would hide the Python installation)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent != Path("/") and not _is_system(parent):
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _is_system(path: Path) -> bool:
    return path == Path("/usr") or Path("/usr") in path.parents


@contextlib.contextmanager
def _sandbox_uid(settings: Settings) -> Iterator[int | None]:
    """A uid no other concurrent run on this machine has (a root worker), or None (bwrap maps the
    worker's own uid). Slots are taken with a lock file, so workers of any lab on one machine agree;
    process limits count per uid, so one run's fork bomb cannot starve another's."""
    if os.geteuid() != 0:
        yield None
        return
    folder = Path("/run/labkit-sandbox") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir()) / "labkit-sandbox"
    folder.mkdir(mode=0o700, exist_ok=True)
    for slot in range(UID_SLOTS):
        uid = settings.sandbox_uid_base + slot
        fd = os.open(folder / f"uid-{uid}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {UID_SLOTS} sandbox uids from {settings.sandbox_uid_base} are in use on this machine")


@functools.lru_cache(maxsize=None)
def unavailable_reason(bwrap: str = "bwrap") -> str | None:
    """Why this machine cannot make the sandbox, or None when it can. Tried for real: bwrap must start
    a process in new namespaces as it will for a run (containers often refuse user namespaces)."""
    path = shutil.which(bwrap)
    if path is None:
        return (f"bubblewrap ({bwrap!r}) is not installed; install Debian's 'bubblewrap' package "
                "(scripts/install.sh does)")
    if os.geteuid() == 0 and not os.path.exists("/usr/bin/setpriv"):
        return "setpriv (util-linux) is missing; it drops a root worker's runs to an unprivileged uid"
    probe = [path, "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    probe += (["--unshare-all"] if os.geteuid() != 0 else
              ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]) + ["/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap could not be started: {err}"
    if done.returncode != 0:
        return ("bubblewrap cannot create namespaces here (" + (done.stderr.strip() or f"exit {done.returncode}")
                + "); user namespaces may be disabled, or a container's seccomp or AppArmor profile refuses them")
    return None


def launcher_for(settings: Settings) -> Launcher:
    """The bubblewrap launcher; the unsandboxed one only for a lab its operator declared a trusted
    single-user lab. Whether a machine that cannot sandbox may run a given protocol at all is
    decided in execute.py (``trusted_protocol``)."""
    if settings.trusted_single_user:
        return Launcher()
    reason = unavailable_reason(settings.sandbox_bwrap)
    return Launcher() if reason else BubblewrapLauncher(shutil.which(settings.sandbox_bwrap) or "bwrap")


def startup_warning(settings: Settings) -> str | None:
    """What a worker or the CLI says at start-up when its runs will not be sandboxed."""
    if settings.trusted_single_user:
        return ("trusted_single_user is set: protocols run WITHOUT a sandbox, with this worker's rights. "
                "Use it only for a lab whose every protocol you trust (docs/security.md)")
    reason = unavailable_reason(settings.sandbox_bwrap)
    if reason:
        return (f"runs cannot be sandboxed on this machine: {reason}. Only protocols added by the lab's "
                f"operator ({settings.user!r}) will run; others fail with this reason (docs/security.md)")
    return None
