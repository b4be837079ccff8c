"""Set up the course's JupyterHub on this machine (run as root; `make hub` runs it for you).

    python3 hub/setup.py [--prefix /opt/cs231n-hub] [--state /srv/cs231n-hub]
                         [--instructor instructor] [--students student1,student2]
                         [--course-id cs231n] [--venv-only]

Everything is idempotent, so running it again only does what is missing:

1. **configurable-http-proxy**, the hub's proxy, from the npm registry (``npm install -g``).
2. **One venv for every user** in ``PREFIX/venv`` (world-readable), built from Debian's
   ``/usr/bin/python3``: the users cannot read root's own Python. It holds JupyterHub (for
   ``jupyterhub-singleuser``), JupyterLab, nbgrader, ipywidgets, NumPy, matplotlib.
3. **The course's code for the instructor only**: a copy of this repository's ``autograder``,
   ``cs231n_lib``, ``notebooks``, ``data`` and ``jupyter`` in ``PREFIX/course-src``, readable
   by the group ``cs231n-instructors`` and nobody else (the notebooks hold the solutions), and
   installed editable into the venv. A student's process cannot read it; what a student imports
   as ``cs231n_lib`` is the student edition fetched with the assignment.
4. **Jupyter configuration per role** in ``STATE/etc/{instructor,student}`` (the spawner points
   ``JUPYTER_CONFIG_DIR`` there, see ``jupyterhub_config.py``): both know the course id and the
   exchange; students get the Assignments tab and Validate, not the formgrader or the course
   list; the instructor gets the formgrader, whose Autograde runs the project's pipeline.
5. **Accounts**: the instructor and the students as real Unix accounts (``useradd``), homes
   ``0700``; passwords are generated once and kept in ``STATE/accounts.json`` (root only).
   An institution's authenticator replaces these passwords (README: "The course on a
   JupyterHub"), not the accounts' Unix side.
6. **The exchange** ``STATE/exchange`` (``0777``, nbgrader's own convention: each course's
   ``inbound`` folder inside it lets students write but not list) and the **course folder**
   ``~instructor/course`` with its ``course.toml`` (course id, exchange, deadlines).

Only the standard library is used, so any Python 3.11 runs this script.
"""

from __future__ import annotations

import argparse
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_PREFIX = Path("/opt/cs231n-hub")
DEFAULT_STATE = Path("/srv/cs231n-hub")
INSTRUCTORS_GROUP = "cs231n-instructors"
# Debian's Python: world-readable, unlike a Python installed under /root.
SYSTEM_PYTHON = "/usr/bin/python3"
# What every user's server needs; the course's own code comes from course-src (instructor only).
REQUIREMENTS = ["jupyterhub>=6.1", "jupyterlab>=4.2", "nbgrader>=0.9.6", "ipywidgets>=8.1",
                "numpy>=2.0", "matplotlib>=3.8", "ipykernel>=6.29"]
# The parts of the repository the instructor's grading needs (never tests, never a course).
COURSE_SOURCE = ["autograder", "cs231n_lib", "notebooks", "data", "jupyter", "pyproject.toml",
                 "README.md"]
IGNORED = shutil.ignore_patterns("course", "__pycache__", "*.pyc", ".ipynb_checkpoints",
                                 "*.egg-info")
# The nbgrader lab extensions a student has no use for (page_config.json turns them off).
INSTRUCTOR_ONLY_LAB = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:course-list",
                       "@jupyter/nbgrader:create-assignment"]
INSTRUCTOR_ONLY_SERVER = ["nbgrader.server_extensions.formgrader",
                          "nbgrader.server_extensions.course_list"]


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------------------------------------
# 1. The proxy
# ---------------------------------------------------------------------------------------------
def ensure_proxy() -> str:
    found = shutil.which("configurable-http-proxy")
    if found is None:
        if shutil.which("npm") is None:
            sys.exit("JupyterHub's proxy needs Node.js and npm: apt-get install nodejs npm")
        run(["npm", "install", "-g", "--no-fund", "--no-audit", "configurable-http-proxy"])
        found = shutil.which("configurable-http-proxy")
    if found is None:
        sys.exit("npm installed configurable-http-proxy, but it is not on PATH")
    return found


# ---------------------------------------------------------------------------------------------
# 2-3. The venv and the instructor's copy of the course's code
# ---------------------------------------------------------------------------------------------
def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def ensure_venv(prefix: Path) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(prefix, 0o755)
    venv = prefix / "venv"
    stamp = venv / ".requirements"
    wanted = _digest("\n".join(REQUIREMENTS).encode(), (REPO / "pyproject.toml").read_bytes())
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv
    if not Path(SYSTEM_PYTHON).is_file():
        sys.exit(f"no {SYSTEM_PYTHON}: apt-get install python3 python3-venv")
    if not (venv / "bin" / "python").is_file():
        run([SYSTEM_PYTHON, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    run(pip + REQUIREMENTS)
    stamp.write_text(wanted)
    return venv


def ensure_group(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        run(["groupadd", "--system", name])
        return grp.getgrnam(name).gr_gid


def install_course_source(prefix: Path, venv: Path, gid: int) -> Path:
    """The instructor's copy of the course's code, installed editable (its notebooks and data
    stay beside the package, where autograder and the edition builder look for them)."""
    src = prefix / "course-src"
    fresh = src.with_name("course-src.new")
    if fresh.exists():
        shutil.rmtree(fresh)
    fresh.mkdir(parents=True)
    for name in COURSE_SOURCE:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, fresh / name, ignore=IGNORED)
        else:
            shutil.copy(path, fresh / name)
    for root, dirs, files in os.walk(fresh):
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), 0, gid)
            os.chmod(os.path.join(root, entry), 0o750 if entry in dirs else 0o640)
    os.chown(fresh, 0, gid)
    os.chmod(fresh, 0o750)  # group instructors only: the notebooks hold the solutions
    if src.exists():
        shutil.rmtree(src)
    fresh.rename(src)
    marker = venv / ".course-src"
    wanted = (src / "pyproject.toml").read_text()
    if not marker.is_file() or marker.read_text() != wanted:
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-e", str(src)])
        marker.write_text(wanted)
    # pip leaves its build metadata in the copy: make it the instructors' too.
    for root, dirs, files in os.walk(src):
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), 0, gid)
    return src


# ---------------------------------------------------------------------------------------------
# 4. Jupyter configuration per role
# ---------------------------------------------------------------------------------------------
NBGRADER_CONFIG = """\
# Written by hub/setup.py: the course on the hub ({role}).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
# A student may take part in other courses later: keep each course's files apart.
c.Exchange.path_includes_course = False
"""

# JupyterHub forbids framing a user's pages ("frame-ancestors 'none'"); the formgrader is a page in
# a frame of the instructor's JupyterLab. 'self' is the hub's origin: on a hub with one domain that
# includes other users' servers, so production hubs give each user a subdomain
# (c.JupyterHub.subdomain_host), which makes 'self' the instructor's server alone.
INSTRUCTOR_SERVER = """\
c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}
"""

INSTRUCTOR_NBGRADER = """\
c.CourseDirectory.root = {course!r}
# The course's Validate wording and timeout, as in `make lab`.
from autograder.student_config import validator_config
validator_config(c)
# collect takes a student's newer submission in place of the older one.
c.ExchangeCollect.update = True
"""

STUDENT_NBGRADER = """\
# What Validate says: hidden checks run only when the notebook is graded.
c.Validator.failed_warning = ("VISIBLE CHECKS FAILED IN {{num_failed}} CELL(S)! Fix them before "
                              "you submit. Hidden checks run only when your notebook is graded.\\n")
c.Execute.timeout = 60
"""

SERVER_CONFIG = """\
# Written by hub/setup.py: the course's single-user servers ({role}).
c = get_config()  # noqa: F821
c.LabApp.app_settings_dir = {settings!r}
c.LabApp.custom_css = True
c.ServerApp.jpserver_extensions.update({extensions!r})
"""


def write_role_configs(state: Path, course_id: str, exchange: Path, course: Path) -> dict:
    """STATE/etc/<role>/: nbgrader_config.py, jupyter_server_config.py, labconfig, custom css."""
    folders = {}
    for role in ("instructor", "student"):
        folder = state / "etc" / role
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "labconfig").mkdir(parents=True)
        (folder / "custom").mkdir()
        shutil.copy(REPO / "jupyter" / "custom" / "custom.css", folder / "custom" / "custom.css")
        settings = folder / "lab-settings"
        shutil.copytree(REPO / "jupyter" / "lab-settings", settings)
        nbgrader = NBGRADER_CONFIG.format(role=role, course_id=course_id, exchange=str(exchange))
        if role == "instructor":
            nbgrader += INSTRUCTOR_NBGRADER.format(course=str(course))
            extensions = {"autograder.formgrader": True}
            disabled = {}
        else:
            nbgrader += STUDENT_NBGRADER.format()
            extensions = {name: False for name in INSTRUCTOR_ONLY_SERVER}
            disabled = {"disabledExtensions": {name: True for name in INSTRUCTOR_ONLY_LAB}}
        (folder / "nbgrader_config.py").write_text(nbgrader)
        (folder / "jupyter_server_config.py").write_text(SERVER_CONFIG.format(
            role=role, settings=str(settings), extensions=extensions)
            + (INSTRUCTOR_SERVER if role == "instructor" else ""))
        (folder / "labconfig" / "page_config.json").write_text(json.dumps(disabled, indent=1))
        # Tells jupyter_core there is no old ~/.ipython configuration to move into this folder.
        (folder / "migrated").write_text("")
        for root, dirs, files in os.walk(folder):
            for entry in dirs + files:
                os.chmod(os.path.join(root, entry), 0o755 if entry in dirs else 0o644)
        os.chmod(folder, 0o755)
        folders[role] = folder
    os.chmod(state / "etc", 0o755)
    return folders


# ---------------------------------------------------------------------------------------------
# 5. Accounts
# ---------------------------------------------------------------------------------------------
def ensure_account(name: str, password: str, groups: list[str] = ()) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/bash", name])
    home = Path(pwd.getpwnam(name).pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    info = pwd.getpwnam(name)
    os.chown(home, info.pw_uid, info.pw_gid)
    os.chmod(home, 0o700)  # no student reads another's files, nor the instructor's course
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    for group in groups:
        run(["usermod", "--append", "--groups", group, name])


def load_accounts(state: Path, names: list[str]) -> dict[str, str]:
    """name -> password; new names get a new random password, kept for the next run."""
    path = state / "accounts.json"
    accounts = json.loads(path.read_text()) if path.is_file() else {}
    for name in names:
        accounts.setdefault(name, secrets.token_urlsafe(12))
    path.write_text(json.dumps(accounts, indent=1))
    os.chmod(path, 0o600)
    return accounts


# ---------------------------------------------------------------------------------------------
# 6. The exchange and the course folder
# ---------------------------------------------------------------------------------------------
COURSE_TOML = """\
# The course's settings (autograder/deadlines.py reads them): its id and exchange for nbgrader,
# each assignment's due date, the late-penalty rule and per-student extensions.
course_id = {course_id!r}
exchange = {exchange!r}

[late_penalty]
per_day = 0.10        # fraction of the score taken off for every day (or part of one) late
cap = 0.50            # never more than this fraction
grace_minutes = 0     # a submission this close after the deadline is on time

[deadlines]
# "01_activations" = "2026-10-09T23:59:00+00:00"

[extensions]
# "01_activations" = {{ student1 = 2 }}               # days after the due date
# "01_activations" = {{ student1 = "2026-10-12T12:00:00+00:00" }}   # or a new due date
"""


def ensure_course(instructor: str, course_id: str, exchange: Path) -> Path:
    info = pwd.getpwnam(instructor)
    course = Path(info.pw_dir) / "course"
    course.mkdir(exist_ok=True)
    settings = course / "course.toml"
    if not settings.exists():
        settings.write_text(COURSE_TOML.format(course_id=course_id, exchange=str(exchange)))
    for path in (course, settings):
        os.chown(path, info.pw_uid, info.pw_gid)
    return course


def ensure_exchange(state: Path) -> Path:
    exchange = state / "exchange"
    exchange.mkdir(parents=True, exist_ok=True)
    os.chmod(exchange, 0o777)
    return exchange


# ---------------------------------------------------------------------------------------------
def setup(prefix: Path, state: Path, instructor: str, students: list[str], course_id: str) -> dict:
    if os.geteuid() != 0:
        sys.exit("hub/setup.py creates accounts and folders under /opt and /srv: run it as root "
                 "(sudo make hub)")
    proxy = ensure_proxy()
    prefix.mkdir(parents=True, exist_ok=True)
    os.chmod(prefix, 0o755)
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)  # users reach the exchange inside; accounts.json is root's own
    venv = ensure_venv(prefix)
    gid = ensure_group(INSTRUCTORS_GROUP)
    src = install_course_source(prefix, venv, gid)
    accounts = load_accounts(state, [instructor, *students])
    ensure_account(instructor, accounts[instructor], [INSTRUCTORS_GROUP])
    for student in students:
        ensure_account(student, accounts[student])
    exchange = ensure_exchange(state)
    course = ensure_course(instructor, course_id, exchange)
    configs = write_role_configs(state, course_id, exchange, course)
    settings = {"prefix": str(prefix), "state": str(state), "venv": str(venv),
                "course_src": str(src), "proxy": proxy, "course_id": course_id,
                "exchange": str(exchange), "course": str(course), "instructor": instructor,
                "students": students, "config_dirs": {k: str(v) for k, v in configs.items()}}
    (state / "hub.json").write_text(json.dumps(settings, indent=1))
    return settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=str(DEFAULT_PREFIX), help="venv and configuration")
    parser.add_argument("--state", default=str(DEFAULT_STATE),
                        help="hub database, exchange, passwords (default %(default)s)")
    parser.add_argument("--instructor", default="instructor")
    parser.add_argument("--students", default="student1,student2", help="comma-separated")
    parser.add_argument("--course-id", default="cs231n")
    parser.add_argument("--venv-only", action="store_true",
                        help="only the proxy and the users' venv (steps 1-2), e.g. ahead of tests")
    args = parser.parse_args(argv)
    if args.venv_only:
        if os.geteuid() != 0:
            sys.exit("hub/setup.py installs under /opt and npm's global folder: run it as root")
        print(f"proxy: {ensure_proxy()}\nvenv: {ensure_venv(Path(args.prefix))}")
        return 0
    settings = setup(Path(args.prefix), Path(args.state), args.instructor,
                     [s for s in args.students.split(",") if s], args.course_id)
    print(json.dumps(settings, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
