"""Issue 12: a hostile class cannot game grading, harm classmates, leak or outlive its grading.

The class (tests/autograder/hostile_class.py: one attacker per row of the issue's table, and honest
students: correct, partly wrong, blank, and a correct neighbour graded beside the cross-scratch
attacker) is graded with ``python -m autograder grade --workers 2``, then graded again with the
attackers' submissions removed. The honest students are also graded alone first, in a course of
their own: their reference scores. The grade commands get a secret in their environment
(``GRADER_DB_PASSWORD``) that must never reach a feedback file.

Everything the attacks may destroy belongs to this run (see hostile_class.py's safety notes);
whatever got through is repaired at the end by ``hostile_class.clean_up`` and reported.
``HOSTILE_ATTACKS=fake_result,leak`` runs a subset (for bisecting).
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import hostile_class as hc
from autograder import classroom
from autograder.course import REPO_DIR, Course

pytestmark = pytest.mark.slow

GRADE_TIMEOUT = 3600          # generous: a busy machine, 25 submissions on 2 workers
MAX_FEEDBACK = 2 * 1024 * 1024


# ---------------------------------------------------------------------------------------------
# Snapshots of what must not change
# ---------------------------------------------------------------------------------------------
def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def repo_state() -> dict:
    """Content hash of every tracked file, and every file an attack names with its markers."""
    tracked = subprocess.run(["git", "-C", str(REPO_DIR), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    state = {}
    for rel in filter(None, tracked):
        path = REPO_DIR / rel
        state[rel] = _hash_file(path) if path.is_file() else None
    for pattern in ("result.json", "results.json", "result.json.tmp", "results.json.tmp", "*.pth",
                    "hostile-*"):
        for path in REPO_DIR.rglob(pattern):
            if ".venv" not in path.parts and ".git" not in path.parts:
                state[f"untracked:{path.relative_to(REPO_DIR)}"] = "present"
    return state


def site_state() -> dict:
    """Names, sizes and mtimes of every file in the interpreter's site-packages folders."""
    state = {}
    for d in hc.site_packages_dirs():
        for root, dirs, files in os.walk(d):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            for f in files:
                p = os.path.join(root, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                state[p] = (st.st_size, st.st_mtime_ns)
    return state


def tree_state(*folders: Path) -> dict:
    state = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                state[str(p)] = _hash_file(p)
            elif p.is_dir():
                state[str(p)] = "dir"
    return state


def new_files_under(home: Path, since: float) -> list[str]:
    """Files created under home since ``since``: only folders modified since then are entered."""
    found, todo = [], [home]
    while todo:
        d = todo.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if e.is_dir(follow_symlinks=False):
                if st.st_mtime >= since:
                    todo.append(Path(e.path))
            elif st.st_mtime >= since or st.st_ctime >= since:
                found.append(e.path)
    return sorted(found)


def home_state(home: Path) -> dict:
    """What the attacks on HOME target: IPython's startup files and profile configuration.

    (Not the rest of ~/.ipython: history and logs change whenever anyone's kernel runs.)
    """
    state = {}
    for folder in sorted((home / ".ipython").glob("profile_*")):
        for p in [*folder.glob("startup/*"), *folder.glob("*.py")]:
            state[str(p)] = _hash_file(p) if p.is_file() else "dir"
    return state


# ---------------------------------------------------------------------------------------------
# The listeners the socket attack must not reach
# ---------------------------------------------------------------------------------------------
class UnixListener:
    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------------
def grade(course: Course, env: dict, log: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "autograder", "--course", str(course.root), "grade",
               "--workers", "2"]
    try:
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=GRADE_TIMEOUT,
                             cwd=course.root.parent)
    except subprocess.TimeoutExpired as exc:
        run = subprocess.CompletedProcess(command, -999, str(exc.stdout or ""), f"timed out: {exc}")
    log.write_text(f"exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}")
    return run


def reports(course: Course) -> dict:
    folder = course.root / "reports" / hc.ASSIGNMENT
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")} if folder.is_dir() else {}


def csv_scores(path: Path) -> dict:
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)
                if r["assignment"] == hc.ASSIGNMENT}


def table_scores(stdout: str) -> dict:
    found = {}
    for line in stdout.splitlines():
        m = re.match(rf"^(\S+)\s+{hc.ASSIGNMENT}\s+(\S+)\s", line)
        if m:
            try:
                found[m[1]] = float(m[2])
            except ValueError:
                pass
    return found


def hand_in_class(course: Course, attacks, scope, honest_only=False) -> dict:
    """Hand in the class; {student: the lines it wrote} (its own code may show in its feedback)."""
    source, release = classroom.read_pair(course, hc.ASSIGNMENT)
    notebooks = {name: build(source, release) for name, build in hc.HONEST.items()}
    if not honest_only:
        notebooks.update({a.name: hc.build_attacker(a, source, release, scope) for a in attacks})
    for name, nb in notebooks.items():
        classroom.hand_in(course, name, hc.ASSIGNMENT, nb)
    return {name: {_norm(line) for c in nb.cells for line in c.source.splitlines()}
            for name, nb in notebooks.items()}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tag = "hx" + secrets.token_hex(4)
    secret = "pw-" + secrets.token_urlsafe(18)
    root = tmp_path_factory.mktemp(f"hostile-{tag}")
    attacks = hc.selected_attacks()
    students = [*hc.HONEST, *(a.name for a in attacks)]
    scope = hc.make_scope(tag, root, students)
    home = Path(os.path.expanduser("~"))
    tmpdir = root / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, GRADER_DB_PASSWORD=secret, TMPDIR=str(tmpdir),
               **{hc.TOKEN_VAR: tag})
    env.pop("PYTHONPATH", None)

    start = time.time() - 1
    before = {"repo": repo_state(), "site": site_state(), "home": home_state(home)}
    listeners = [UnixListener(f"/tmp/hostile-{tag}.sock"), UnixListener(f"\0hostile-{tag}")]
    data = {"tag": tag, "secret": secret, "root": root, "scope": scope, "attacks": attacks,
            "home": home, "start": start, "runs": {}, "reports": {}, "csv": {}, "table": {}}
    try:
        # 1. the honest students alone: their reference scores
        alone = Course(root / "alone" / "course", REPO_DIR / "notebooks")
        alone.release([hc.ASSIGNMENT])
        hand_in_class(alone, attacks, scope, honest_only=True)
        data["runs"]["alone"] = grade(alone, env, root / "alone.log")
        data["reports"]["alone"] = reports(alone)
        data["csv"]["alone"] = csv_scores(alone.root / "grades.csv")

        # 2. the whole class
        course = Course(root / "class" / "course", REPO_DIR / "notebooks")
        course.release([hc.ASSIGNMENT])
        data["own"] = hand_in_class(course, attacks, scope)
        trees = [course.root / t for t in ("source", "release", "submitted")]
        before["course"] = tree_state(*trees)
        data["course"] = course
        t0 = time.monotonic()
        data["runs"]["class"] = grade(course, env, root / "class.log")
        data["reports"]["class"] = reports(course)
        data["csv"]["class"] = csv_scores(course.root / "grades.csv")
        data["table"]["class"] = table_scores(data["runs"]["class"].stdout)
        data["class_end"] = time.time()
        after_course = tree_state(*trees)
        if (course.root / "feedback").is_dir():
            shutil.copytree(course.root / "feedback", root / "feedback-class")

        # 3. again, without the attackers
        for attack in attacks:
            shutil.rmtree(course.path("submitted", attack.name), ignore_errors=True)
        data["runs"]["again"] = grade(course, env, root / "again.log")
        data["reports"]["again"] = reports(course)
        data["csv"]["again"] = csv_scores(course.root / "grades.csv")
        data["table"]["again"] = table_scores(data["runs"]["again"].stdout)
        data["seconds"] = time.monotonic() - t0
        if (course.root / "feedback").is_dir():
            shutil.copytree(course.root / "feedback", root / "feedback-again")

        time.sleep(2)  # let anything the gradings left behind show itself
        data["left"] = hc.tagged_processes(tag, (str(root),))
        data["marker"] = Path(scope.marker).exists() or (home / f"hostile-{tag}-daemon").exists()
        data["connections"] = [lst.connections for lst in listeners]
        data["changed"] = {
            "repo": _diff(before["repo"], repo_state()),
            "site": _diff(before["site"], site_state()),
            "home": _diff(before["home"], home_state(home)) + [
                f for f in new_files_under(home, start) if _attack_made(f, tag)],
            "course": _diff(before["course"], after_course),
            "tmp": sorted(str(p) for p in Path("/tmp").glob(f"hostile-{tag}*")
                          if not p.name.endswith(".sock")),
        }
        yield data
    finally:
        for lst in listeners:
            lst.close()
        try:
            os.unlink(f"/tmp/hostile-{tag}.sock")
        except OSError:
            pass
        repaired = hc.clean_up(scope, home)
        if repaired:
            print("hostile clean-up repaired:\n  " + "\n  ".join(repaired))


def _attack_made(path: str, tag: str) -> bool:
    """New files under HOME that an attack of this run may have made (not other engineers')."""
    return (tag in path or "/startup/" in path
            or path.endswith((".pth", "result.json", "results.json", "_config.py")))


def _diff(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# ---------------------------------------------------------------------------------------------
# What must not leak into feedback
# ---------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _solution_lines() -> set[str]:
    """Lines (>= 20 chars) of the instructor's solution cells and of the library's activations."""
    nb = nbformat.read(REPO_DIR / "notebooks" / hc.ASSIGNMENT / f"{hc.ASSIGNMENT}.ipynb", as_version=4)
    lines = set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and "BEGIN SOLUTION" in cell.source:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN SOLUTION" in line:
                    inside = True
                elif "END SOLUTION" in line:
                    inside = False
                elif inside:
                    lines.add(_norm(line))
        elif cell.cell_type == "markdown" and meta.get("solution"):
            lines.update(_norm(line) for line in cell.source.splitlines()
                         if "SOLUTION" not in line)
    import inspect

    from cs231n_lib import layers

    for act in ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout"):
        for fn in (getattr(layers, f"{act}_forward"), getattr(layers, f"{act}_backward")):
            body = inspect.getsource(fn).split('"""')[-1] if '"""' in inspect.getsource(fn) \
                else inspect.getsource(fn)
            lines.update(_norm(line) for line in body.splitlines())
    return {line for line in lines if len(line) >= 20}


def _hidden_check_lines() -> set[str]:
    """Lines (>= 20 chars) of the hidden checks: the exercise module and the hidden test cells."""
    path = REPO_DIR / "autograder" / "exercises" / "nb01_activations.py"
    lines = {_norm(line) for line in path.read_text().splitlines()
             if not line.strip().startswith(("#", '"""'))}
    nb = nbformat.read(REPO_DIR / "notebooks" / hc.ASSIGNMENT / f"{hc.ASSIGNMENT}.ipynb", as_version=4)
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside:
                lines.add(_norm(line))
    return {line for line in lines if len(line) >= 20}


def _digits(value: float, n: int = 9) -> str | None:
    """The first n significant digits of a value, or None when it is not distinctive."""
    v = abs(float(value))
    if not np.isfinite(v) or v < 1e-6:
        return None
    mantissa = f"{v:.16e}".split("e")[0].replace(".", "")
    return mantissa[:n] if len(mantissa.rstrip("0")) > n else None


def _expected_tokens() -> set[str]:
    from autograder.exercise import expected_outputs
    from autograder.exercises import catalogue

    tokens = set()
    for ex in catalogue()[hc.ASSIGNMENT].values():
        for check in ex.checks:
            if not check.hidden:
                continue
            for value in expected_outputs(ex, check).values():
                for v in np.asarray(value, dtype=float).ravel():
                    t = _digits(v)
                    if t:
                        tokens.add(t)
    return tokens


def _number_tokens(text: str) -> set[str]:
    found = set()
    # Anchored at the start of a digit run and bounded: linear even in a line of 10 MB of digits.
    for m in re.finditer(r"(?<![\d.])\d{1,25}\.\d{1,25}(?:e[-+]?\d+)?", text):
        digits = m[0].split("e")[0].replace(".", "").lstrip("0")
        if len(digits) >= 10:
            found.add(digits[:9])
    return found


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------
def test_every_grade_command_exits_zero(hostile):
    for name, run in hostile["runs"].items():
        assert run.returncode == 0, f"{name}: exit {run.returncode}\n{run.stdout[-4000:]}\n{run.stderr[-3000:]}"


# Attacks the sandbox turns into nothing at all, so there is nothing to report: the sockets
# attacker finds no host /tmp and no network to reach, the killer sees only its own sandbox's
# processes, and the SIGINT for "the parent" reaches the sandbox's own init (the kernel's parent
# there), which ignores it; an invalid display update is made well-formed again. They must
# score exactly as their honest twin.
NOTHING_TO_REPORT = {"x05_unix_sockets", "x17_sigint_parent", "x18_kill_all", "x19_display_update"}


def test_every_attacker_is_recorded_with_a_reason(hostile):
    reports_ = hostile["reports"]["class"]
    missing = [a.name for a in hostile["attacks"] if a.name not in reports_]
    silent = [a.name for a in hostile["attacks"] if a.name not in NOTHING_TO_REPORT
              and a.name in reports_ and not reports_[a.name]["reason"].strip()]
    assert not missing and not silent, f"no report: {missing}; no reason: {silent}"
    alone = hostile["reports"]["alone"]
    for attack in hostile["attacks"]:
        if attack.name in NOTHING_TO_REPORT:
            assert reports_[attack.name]["score"] == alone[hc.TWIN[attack.twin]]["score"], attack.name


@pytest.mark.parametrize("attack", hc.selected_attacks(), ids=lambda a: a.name)
def test_no_attacker_scores_more_than_its_honest_twin(hostile, attack):
    twin = hc.TWIN[attack.twin]
    reference = hostile["reports"]["alone"][twin]["score"]
    report = hostile["reports"]["class"].get(attack.name)
    assert report is not None, "the attacker has no report"
    got = {"report": report["score"], "grades.csv": hostile["csv"]["class"].get(attack.name),
           "table": hostile["table"]["class"].get(attack.name)}
    over = {k: v for k, v in got.items() if v is not None and v > reference + 1e-9}
    assert not over, f"{attack.row}: {over} > {twin}'s {reference}; reason: {report['reason'][:500]}"


@pytest.mark.parametrize("run", ["class", "again"])
def test_honest_scores_equal_their_scores_graded_alone(hostile, run):
    alone = hostile["reports"]["alone"]
    assert set(alone) == set(hc.HONEST), alone.keys()
    wrong = {}
    for student in hc.HONEST:
        want = alone[student]["score"]
        got = {"report": hostile["reports"][run].get(student, {}).get("score"),
               "grades.csv": hostile["csv"][run].get(student),
               "table": hostile["table"][run].get(student)}
        bad = {k: v for k, v in got.items() if v is None or abs(v - want) > 1e-9}
        if bad:
            wrong[student] = (want, bad, hostile["reports"][run].get(student, {}).get("reason", "")[:300])
    assert not wrong, wrong


def test_honest_reference_scores_are_sane(hostile):
    alone = hostile["reports"]["alone"]
    assert alone["honest_correct"]["score"] == hc.AUTO_POINTS
    assert alone["x15_honest_neighbour"]["score"] == hc.AUTO_POINTS
    assert alone["honest_blank"]["score"] == 0
    assert 0 < alone["honest_partly_wrong"]["score"] < hc.AUTO_POINTS


@pytest.mark.parametrize("what", ["repo", "site", "home", "course", "tmp"])
def test_nothing_outside_the_scratch_folders_changed(hostile, what):
    assert hostile["changed"][what] == [], hostile["changed"][what][:30]


def _feedback_files(hostile):
    files = []
    for run in ("feedback-class", "feedback-again"):
        folder = hostile["root"] / run
        if folder.is_dir():
            files += [(run, p) for p in sorted(folder.rglob("*.html"))]
    return files


def test_there_is_feedback_for_every_student(hostile):
    folder = hostile["root"] / "feedback-class"
    got = {p.parts[-3] for p in folder.rglob("*.html")} if folder.is_dir() else set()
    expected = set(hc.HONEST) | {a.name for a in hostile["attacks"]}
    assert got == expected, sorted(expected - got)


def test_no_feedback_leaks_secrets_checks_expected_values_or_solutions(hostile):
    secret = hostile["secret"]
    hidden, solutions, tokens = _hidden_check_lines(), _solution_lines(), _expected_tokens()
    leaks = {}
    for run, path in _feedback_files(hostile):
        raw = path.read_text(errors="replace")
        text = _norm(html.unescape(raw))
        student = path.parts[-3]
        own = hostile["own"].get(student, set())
        found = []
        if secret in raw or secret in text:
            found.append("the environment secret")
        # Whole lines (a printed source shows its lines as lines), and anywhere in smaller files.
        lines = {_norm(re.sub(r"<[^>]+>", "", line)) for line in html.unescape(raw).splitlines()}
        small = len(text) < 4 * MAX_FEEDBACK

        def shown(line):
            return line not in own and (line in lines or (small and line in text))

        found += [f"hidden-check line: {line}" for line in sorted(hidden) if shown(line)][:3]
        found += [f"solution line: {line}" for line in sorted(solutions) if shown(line)][:3]
        values = _number_tokens(text) & tokens
        if values:
            found.append(f"{len(values)} expected output value(s), e.g. {sorted(values)[:3]}")
        if found:
            leaks[f"{run}/{student}"] = found
    assert not leaks, json.dumps(leaks, indent=1)[:6000]


def test_no_feedback_file_exceeds_2_mib(hostile):
    big = {f"{run}/{p.parts[-3]}": p.stat().st_size for run, p in _feedback_files(hostile)
           if p.stat().st_size > MAX_FEEDBACK}
    assert not big, big


def test_no_process_of_the_grading_is_left(hostile):
    assert hostile["left"] == [], hostile["left"]


def test_the_daemon_never_wrote_its_marker(hostile):
    """The daemon writes its marker 60 s after it started: long after its own grading ended."""
    time.sleep(max(0.0, hostile["class_end"] + 65 - time.time()))
    home_marker = hostile["home"] / f"hostile-{hostile['tag']}-daemon"
    assert not hostile["marker"] and not Path(hostile["scope"].marker).exists() \
        and not home_marker.exists()


def test_no_unix_socket_of_the_host_was_reached(hostile):
    assert hostile["connections"] == [0, 0], hostile["connections"]
