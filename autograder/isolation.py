"""Isolation and limits: every process that runs a student's code runs in a bubblewrap sandbox.

A student's notebook is code written by the cleverest student in the class, run by the grader.
Two kinds of process run it: the Jupyter kernel that executes the notebook, and the check child
that calls the student's functions for the checks. Each starts inside its own :class:`Sandbox`:

* **nothing of the host is writable**, and little of it is visible: the system folders
  (``/usr``, ``/etc`` without what other accounts may not read), the Python installation and the
  grader's venv (without PyTorch, :data:`HIDDEN_PACKAGES`), all read-only, plus the read-only folders the sandbox is given (the student's edition of the
  library). The repository, the course folder, other students' scratch folders, the real
  ``HOME`` and the host's ``/tmp`` (with its sockets) are simply not there;
* **one writable folder** (``workdir``; a size-capped tmpfs of its own where the grader may
  mount one, :func:`private_mounts`): the kernel's connection file and sockets, or the check
  child's scratch. ``HOME`` and ``/tmp`` are small in-memory file systems;
* **its own namespaces** (``--unshare-all``): no network (unless ``allow_network``), its own PID
  namespace, so no signal from inside reaches the grader and the whole process tree -- daemons
  started with ``setsid`` included -- dies with the sandbox; IPC and hostname private;
* **an unprivileged user** (uid and gid 65534, no capabilities) and an **empty environment**
  (``--clearenv``) but for the few variables listed in :meth:`Sandbox.environment`;
* **limits**: address space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), core dumps off, the size
  of the in-memory folders (``HOME``, ``/tmp``, ``/dev/shm``), a watchdog on the size of the
  writable folder, and, where the machine allows control groups, the memory and the number of
  processes of the sandbox as a whole (:class:`Cgroups`);
* it **dies with the grader** that started it (``setpriv --pdeathsig`` outside,
  ``--die-with-parent`` inside).

Without ``bwrap`` grading stops with a message naming the package, unless the instructor asks for
``--no-sandbox``: then the same processes run unconfined (with the limits and a clean
environment), and every result says so.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

SANDBOX_UID = 65534          # "nobody"
HOME = "/home/student"       # the sandbox's HOME (an in-memory file system)
NO_SANDBOX_WARNING = ("graded WITHOUT the sandbox (--no-sandbox): student code ran with the "
                      "grader's rights")

# Packages of the grader's venv that student code may not import: PyTorch's autograd would
# compute every backward pass the exercises ask for. Inside the sandbox their folders are empty.
HIDDEN_PACKAGES = ("torch", "functorch", "torchgen")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or does not work on this machine."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 3072        # address space of each process
    file_mb: int = 256           # the largest file a process may write
    tmpfs_mb: int = 256          # each of HOME and /tmp inside the sandbox
    workdir_mb: int = 512        # the writable folder, watched
    allow_network: bool = False


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def require_bwrap() -> str:
    """The path of ``bwrap``, or a :class:`SandboxUnavailable` naming the package to install."""
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable(
            "grading runs student code in a bubblewrap sandbox, and `bwrap` is not installed: "
            "install Debian's `bubblewrap` package (sudo apt-get install bubblewrap), or grade "
            "with --no-sandbox to run student code with your own rights")
    return path


def _python_roots() -> list[str]:
    """The folders the grader's Python needs: its installation and the venv."""
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    return sorted(roots)


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for link in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    return args


def private_entries(root: str) -> list[tuple[str, bool]]:
    """Files and folders under ``root`` that other accounts may not read: (path, is_folder).

    The sandbox's user is unprivileged inside, but when the grader runs as root it *is* root to
    the host's file permissions (a user namespace maps it to the account that started it). So
    whatever the host keeps from other accounts -- password hashes, SSH host keys, a database's
    access rules -- is masked rather than trusted to permissions.
    """
    found, stack = [], [root]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except OSError:
                    continue
                if stat.S_ISDIR(mode):
                    if mode & 0o005 != 0o005:
                        found.append((entry.path, True))
                    else:
                        stack.append(entry.path)
                elif stat.S_ISREG(mode) and not mode & 0o004:
                    found.append((entry.path, False))
    return found


@functools.lru_cache(maxsize=None)
def _etc_masks() -> tuple[str, ...]:
    # /etc is where a host keeps its secrets (~1,200 entries: 35 ms). /usr and the Python
    # installation hold software (200,000 entries: seconds), and are not scanned.
    return tuple(_masks("/etc"))


def _masks(root: str) -> list[str]:
    args = []
    for path, folder in private_entries(root):
        args += ["--tmpfs", path] if folder else ["--ro-bind", "/dev/null", path]
    return args


@functools.lru_cache(maxsize=None)
def _hidden_packages(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Mounts that empty HIDDEN_PACKAGES, and the site's ``.pth`` files: among them the grader's
    editable install of this project, whose import finder would run at every Python start
    inside (16 ms of CPU each) for a checkout the sandbox does not have."""
    args = []
    for folder in sorted({os.path.realpath(f) for f in sys.path}):
        if folder.endswith("site-packages") and any(folder.startswith(r + os.sep) for r in roots):
            for name in HIDDEN_PACKAGES:
                if os.path.isdir(os.path.join(folder, name)):
                    args += ["--tmpfs", os.path.join(folder, name)]
            for pth in sorted(glob.glob(os.path.join(folder, "*.pth"))):
                args += ["--ro-bind", "/dev/null", pth]
    return tuple(args)


_own_mounts = False
CLONE_NEWNS, MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 0x20000, 0x2, 0x4, 0x4000, 0x40000


@functools.lru_cache(maxsize=None)
def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def private_mounts() -> bool:
    """Give this process mounts of its own, so each sandbox's writable folder can be a tmpfs.

    A watched host folder cannot cap what a sandbox writes: files deleted while still open take
    disk space that no walk of the folder sees. A tmpfs of its own can: it is full at its size,
    and its pages count in the sandbox's memory control group. Mounting needs root, and the
    namespace must be made before the process starts a thread (a thread keeps the old one).
    It, and every tmpfs in it, vanish with this process and its sandboxes. The grader's worker
    calls it first thing; elsewhere sandboxes keep the watched host folder.
    """
    global _own_mounts
    if _own_mounts:
        return True
    if os.geteuid() != 0 or len(os.listdir("/proc/self/task")) != 1:
        return False
    if _libc().unshare(CLONE_NEWNS) != 0:
        return False
    _own_mounts = _libc().mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0
    return _own_mounts


def _mount_capped(path: Path, megabytes: int) -> bool:
    """A tmpfs of ``megabytes`` on ``path`` (in this process's own mounts only)."""
    if not _own_mounts or os.path.ismount(path):
        return False
    options = f"size={megabytes}m,nr_inodes=65536,mode=0755".encode()
    return _libc().mount(b"tmpfs", str(path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0


CGROUP_ROOT = Path("/sys/fs/cgroup")
MAX_PROCESSES = 256          # processes and threads of one sandbox, all together


class Cgroups:
    """The control groups of one sandbox: all its processes share one memory and one pid limit.

    ``RLIMIT_AS`` caps one process; a student who forks, or fills ``/dev/shm`` and ``/tmp``
    (memory-backed), multiplies it. A control group caps the sandbox as a whole. They need a
    writable cgroup file system (root, here); where there is none the sandbox keeps its
    per-process limits only, and :attr:`available` says so.
    """

    def __init__(self, name: str, memory_bytes: int, processes: int = MAX_PROCESSES):
        self.name, self.memory_bytes, self.processes = name, memory_bytes, processes
        self.dirs: list[Path] = []
        self.ensure()

    def ensure(self) -> None:
        """Create the groups (again, after :meth:`release`)."""
        if self.dirs:
            return
        name, memory_bytes, processes = self.name, self.memory_bytes, self.processes
        v1 = {"memory": ("memory.limit_in_bytes", memory_bytes), "pids": ("pids.max", processes),
              "cpuacct": (None, None)}
        try:
            if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2: one tree
                folder = CGROUP_ROOT / name
                folder.mkdir()
                self.dirs.append(folder)
                (folder / "memory.max").write_text(str(memory_bytes))
                (folder / "pids.max").write_text(str(processes))
            else:
                for controller, (limit, value) in v1.items():
                    folder = CGROUP_ROOT / controller / name
                    folder.mkdir()
                    self.dirs.append(folder)
                    if limit is not None:
                        (folder / limit).write_text(str(value))
        except OSError:
            self.release()

    @property
    def available(self) -> bool:
        return bool(self.dirs)

    def cpu_seconds(self) -> float | None:
        """CPU seconds used by every process that was ever in the group (None: not counted).

        Unlike a walk over /proc, this keeps the time of processes that have ended and were
        never waited for (a parent that ignores SIGCHLD leaves no trace of its children's work).
        """
        for folder in self.dirs:
            try:
                if (folder / "cpu.stat").exists():   # cgroup v2
                    for line in (folder / "cpu.stat").read_text().splitlines():
                        if line.startswith("usage_usec "):
                            return int(line.split()[1]) / 1e6
                if (folder / "cpuacct.usage").exists():   # cgroup v1
                    return int((folder / "cpuacct.usage").read_text()) / 1e9
            except (OSError, ValueError):
                return None
        return None

    def prefix(self) -> list[str]:
        """A command prefix that joins the groups, then runs the rest: nothing starts outside."""
        if not self.dirs:
            return []
        joins = " && ".join(f"echo $$ > {d / 'cgroup.procs'}" for d in self.dirs)
        return ["sh", "-c", f'{joins} && exec "$@"', "sh"]

    def kill(self) -> None:
        for folder in self.dirs:
            try:
                pids = (folder / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError, ValueError):
                    pass

    def release(self) -> None:
        """Kill what is left and remove the groups (a group with processes cannot go)."""
        self.kill()
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except (FileNotFoundError, PermissionError):  # gone, or another account's
                    break
                except OSError:  # still busy: its last processes are being killed
                    threading.Event().wait(0.05)
        self.dirs = []


GROUP_PREFIX = "cs231n-grading-"


@functools.lru_cache(maxsize=None)
def _pid_namespace() -> str:
    """This process's PID namespace, as group names carry it. The control groups are the whole
    machine's, but a pid names a process only in its own namespace: a grader in a container
    must not take a living grader's groups on the host (or in another container) for those of
    a dead one, because the pid in their name is not one of its own."""
    try:
        return f"{os.stat('/proc/self/ns/pid').st_ino:x}"
    except OSError:
        return "0"


def _own_prefix() -> str:
    return f"{GROUP_PREFIX}{_pid_namespace()}-"


def cgroup_name(owner: int, workdir: Path) -> str:
    return f"{_own_prefix()}{owner}-{abs(hash(str(workdir))):x}"


def release_groups(owner: int | None) -> None:
    """Remove every control group the process ``owner`` made (it may have been killed); with
    ``owner`` None, those of every process of this PID namespace that is gone (a grader or a
    worker killed before it could)."""
    if owner is None:
        wanted = _owner_gone
    else:
        wanted = lambda name: name.startswith(f"{_own_prefix()}{owner}-")  # noqa: E731
    folders = [CGROUP_ROOT] + ([p for p in CGROUP_ROOT.iterdir() if p.is_dir()]
                               if CGROUP_ROOT.is_dir() else [])
    for parent in folders:
        try:
            found = [p for p in parent.iterdir() if wanted(p.name)]
        except OSError:
            continue
        for folder in found:
            group = Cgroups.__new__(Cgroups)
            group.dirs = [folder]
            group.release()


def _owner_gone(name: str) -> bool:
    """A group of ours (``cgroup_name``, this PID namespace) whose owner process no longer exists."""
    prefix = _own_prefix()
    owner = name[len(prefix):].partition("-")[0] if name.startswith(prefix) else ""
    return owner.isdigit() and not os.path.exists(f"/proc/{owner}")


def _running(pid: str) -> bool:
    """Alive and not a zombie (an exited child its parent has not reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def folder_size(path: Path, limit: int) -> int:
    """Bytes under ``path`` (stops counting past ``limit``); files that vanish are skipped."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:  # a folder takes blocks too: 150,000 empty ones fill a disk
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
            if total > limit:
                return total
    return total


class Sandbox:
    """One sandbox: a writable ``workdir``, read-only folders, a Python path, limits.

    ``command(argv)`` is the command line that runs ``argv`` inside it; ``popen(argv)`` starts it.
    The same object can start several processes one after another (a check child restarted after
    a crash), each in a fresh sandbox over the same ``workdir``.
    """

    def __init__(self, workdir: str | os.PathLike, *, readable: Sequence[str | os.PathLike] = (),
                 pythonpath: Sequence[str | os.PathLike] = (), limits: Limits = Limits(),
                 enabled: bool = True, env: dict[str, str] | None = None):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.capped = enabled and _mount_capped(self.workdir, limits.workdir_mb)
        self.readable = [str(Path(p).resolve()) for p in readable]
        self.pythonpath = [str(Path(p).resolve()) for p in pythonpath]
        self.limits = limits
        self.enabled = enabled
        self.extra_env = dict(env or {})
        self.overfilled = False
        if enabled:
            self.bwrap = require_bwrap()
        self._prepare_matplotlib()
        # The sandbox as a whole: a little above one process's cap, so that a single memory
        # hog meets RLIMIT_AS (a clean MemoryError) first, and a crowd meets this.
        self.cgroups = Cgroups(cgroup_name(os.getpid(), self.workdir),
                               (limits.memory_mb + 512) * 1024 * 1024)

    # -- what runs inside ------------------------------------------------------------------------
    @property
    def python(self) -> str:
        return sys.executable

    def environment(self) -> dict[str, str]:
        """The whole environment of a sandboxed process: nothing of the grader's leaks in."""
        env = {
            "HOME": HOME if self.enabled else str(self.workdir / "home"),
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp" if self.enabled else str(self.workdir / "tmp"),
            "PYTHONPATH": os.pathsep.join(self.pythonpath),
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(self.workdir / "matplotlib"),
            # One BLAS thread per process: submissions are graded side by side, one per core.
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "CS231N_NUM_THREADS": "1",
        }
        # These select the BLAS kernel: the same numbers inside as outside.
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(self.extra_env)
        return env

    def _prepare_matplotlib(self) -> None:
        """Hand the grader's font list to matplotlib inside: rebuilding it costs seconds a start."""
        folder = self.workdir / "matplotlib"
        folder.mkdir(exist_ok=True)
        cache = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
        for fontlist in cache.glob("fontlist-v*.json") if cache.is_dir() else ():
            shutil.copy(fontlist, folder / fontlist.name)
        if not self.enabled:
            for sub in ("home", "tmp"):
                (self.workdir / sub).mkdir(exist_ok=True)

    # -- the command line ------------------------------------------------------------------------
    def _limits_prefix(self) -> list[str]:
        mb = 1024 * 1024
        return ["setpriv", "--pdeathsig", "KILL", "--",
                "prlimit", f"--as={self.limits.memory_mb * mb}", f"--fsize={self.limits.file_mb * mb}",
                "--core=0", "--"]

    def command(self, argv: Sequence[str]) -> list[str]:
        self.cgroups.ensure()
        if not self.enabled:
            return self.cgroups.prefix() + self._limits_prefix() + list(argv)
        tmpfs = str(self.limits.tmpfs_mb * 1024 * 1024)
        # Mounts are made in order: the in-memory /tmp first, so that folders under the host's
        # /tmp (a course in a temporary folder) can be mounted on top of it.
        args = [self.bwrap, *_system_binds(),
                "--size", tmpfs, "--tmpfs", "/tmp", "--size", tmpfs, "--tmpfs", HOME]
        for root in _python_roots() + self.readable + self.pythonpath:
            args += ["--ro-bind", root, root]
        # Only /etc: the folders given to read are the grader's own, shared on purpose, and
        # on a hub the instructor's course files are owner-only yet needed (the check edition).
        args += [*_etc_masks(), *_hidden_packages(tuple(_python_roots()))]
        args += ["--bind", str(self.workdir), str(self.workdir),
                 "--dev", "/dev", "--size", tmpfs, "--tmpfs", "/dev/shm", "--proc", "/proc",
                 "--unshare-all", *(["--share-net"] if self.limits.allow_network else []),
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                 "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
                 "--chdir", HOME, "--clearenv"]
        for name, value in self.environment().items():
            args += ["--setenv", name, value]
        return self.cgroups.prefix() + self._limits_prefix() + args + ["--", *argv]

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` in the sandbox (a new session; the size watch starts with it)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        if not self.enabled:
            kwargs.setdefault("cwd", str(self.workdir / "home"))
            kwargs["env"] = self.environment()
        else:
            kwargs["env"] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        proc = subprocess.Popen(self.command(argv), start_new_session=True, **kwargs)
        self.watch(proc)
        return proc

    def watch(self, proc) -> None:
        """Kill ``proc`` if the writable folder grows past its limit (RLIMIT_FSIZE caps one
        file, not how many)."""
        limit = self.limits.workdir_mb * 1024 * 1024

        def run():
            while proc.poll() is None:
                if folder_size(self.workdir, limit) > limit:
                    self.overfilled = True
                    kill_tree(proc.pid)
                    return
                try:
                    proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass

        threading.Thread(target=run, daemon=True, name="sandbox-size-watch").start()

    def stop(self, proc: subprocess.Popen) -> None:
        """Kill ``proc`` and everything it started."""
        kill_tree(proc.pid)
        self.cgroups.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


    def observe(self, baseline: int = 3) -> list[str]:
        """What the code in the sandbox has left behind, said in words (for the reason column).

        ``baseline`` processes are the sandbox's own (bubblewrap outside and inside, the program
        it runs); more means the student's code started processes that are still running. A
        memory-backed folder nearly full means it wrote as much as it was allowed to.
        """
        notes = []
        pids = []
        if self.cgroups.dirs:
            try:
                pids = [p for p in (self.cgroups.dirs[0] / "cgroup.procs").read_text().split()
                        if _running(p)]
            except OSError:
                pids = []
        if len(pids) > baseline:
            notes.append(f"{len(pids) - baseline} process(es) your code started were still running "
                         "at the end of grading; they were stopped")
        if pids and self.enabled:
            for folder in ("/tmp", HOME, "/dev/shm"):
                try:
                    st = os.statvfs(f"/proc/{pids[-1]}/root{folder}")
                except OSError:
                    continue
                used = (st.f_blocks - st.f_bfree) * st.f_frsize
                if st.f_blocks and used >= 0.9 * st.f_blocks * st.f_frsize:
                    notes.append(f"your code filled {folder} (the limit is "
                                 f"{self.limits.tmpfs_mb} MB)")
        if self.overfilled:
            notes.append(f"your code wrote more than {self.limits.workdir_mb} MB into its folder "
                         "and was stopped")
        elif self.capped:
            st = os.statvfs(self.workdir)
            if st.f_blocks and (st.f_blocks - st.f_bfree) >= 0.9 * st.f_blocks:
                notes.append(f"your code filled its folder (the limit is {self.limits.workdir_mb} MB)")
        return notes

    def release(self) -> None:
        """The sandbox is done with: its control groups go (whatever is left in them is killed)."""
        self.cgroups.release()


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (kernels start their own sessions)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    doomed, todo = [], [pid]
    while todo:
        p = todo.pop()
        doomed.append(p)
        todo.extend(children.get(p, []))
    for p in doomed:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class ChildLauncher:
    """Starts the check child (``autograder/boxed/child.py``) in a sandbox, over two pipes.

    The launcher :func:`autograder.checks.run_checks` uses: ``start()`` a fresh child (a fresh
    sandbox over the same folder), ``stop(proc)`` it and everything it started.
    """

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.child_path = str(Path(__file__).resolve().parent / "boxed" / "child.py")
        if sandbox.enabled and str(Path(self.child_path).parent) not in sandbox.readable:
            sandbox.readable.append(str(Path(self.child_path).parent))

    def start(self) -> subprocess.Popen:
        proc = self.sandbox.popen([self.sandbox.python, self.child_path],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        proc.cpu_seconds = self.sandbox.cgroups.cpu_seconds   # read by checks.CpuBudget
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe:
                    pipe.close()
            except OSError:
                pass
        self.sandbox.stop(proc)


class AdoptingLauncher:
    """A :class:`ChildLauncher` whose first child was started before it was needed: ``start()``
    hands that one over first, then starts fresh ones (a restart after a crash) as usual."""

    def __init__(self, launcher: ChildLauncher, started: subprocess.Popen):
        self.launcher, self.started = launcher, started

    def start(self) -> subprocess.Popen:
        proc, self.started = self.started, None
        return proc if proc is not None else self.launcher.start()

    def stop(self, proc: subprocess.Popen) -> None:
        self.launcher.stop(proc)
