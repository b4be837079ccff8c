"""The sandbox itself (autograder/isolation.py): what a process inside can and cannot reach."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from autograder.isolation import Sandbox, private_entries

PROBE = textwrap.dedent('''
    import json, os, sys
    def read(path):
        try:
            return open(path, "rb").read().decode(errors="replace")
        except OSError as exc:
            return "error: " + type(exc).__name__
    def write(path):
        try:
            open(path, "w").write("x")
            return "written"
        except OSError as exc:
            return "error: " + type(exc).__name__
    try:
        import torch
        torch_ = "usable" if hasattr(torch, "tensor") else "empty"
    except ImportError:
        torch_ = "absent"
    readable = sys.argv[1]
    print(json.dumps({
        "uid": os.getuid(),
        "shadow": read("/etc/shadow"),
        "private": read(os.path.join(readable, "private.txt")),
        "private_folder": read(os.path.join(readable, "closed", "inside.txt")),
        "public": read(os.path.join(readable, "public.txt")),
        "write_readable": write(os.path.join(readable, "new.txt")),
        "host_tmp": read(sys.argv[2]),
        "torch": torch_,
        "etc_private": [p for p in sys.argv[3:] if not read(p).startswith("error")
                        and read(p) != ""],
        "env": sorted(os.environ),
    }))
''')


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    base = tmp_path_factory.mktemp("isolation")
    readable = base / "readable"
    (readable / "closed").mkdir(parents=True)
    (readable / "public.txt").write_text("course data")
    (readable / "private.txt").write_text("instructor secret")
    (readable / "private.txt").chmod(0o600)
    (readable / "closed" / "inside.txt").write_text("instructor secret")
    (readable / "closed").chmod(0o700)
    host_file = base / "host.txt"
    host_file.write_text("host tmp")
    (readable / "probe.py").write_text(PROBE)
    box = Sandbox(base / "work", readable=[readable])
    etc_private = [path for path, folder in private_entries("/etc") if not folder]
    proc = box.popen([box.python, str(readable / "probe.py"), str(readable), str(host_file), *etc_private],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={})
    out, err = proc.communicate(timeout=120)
    box.release()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def test_the_probe_runs_unprivileged(probe):
    assert probe["uid"] == 65534


def test_what_other_accounts_may_not_read_in_etc_is_masked_even_for_a_root_grader(probe):
    assert probe["shadow"] in ("", "error: PermissionError")
    assert probe["etc_private"] == [], probe["etc_private"]


def test_a_folder_given_to_read_is_shown_as_the_grader_sees_it(probe):
    """Owner-only files included: on a hub the instructor's course (the check edition) is."""
    assert probe["public"] == "course data"
    assert probe["private"] == probe["private_folder"] == "instructor secret"


def test_nothing_given_to_read_is_writable_and_the_hosts_tmp_is_not_there(probe):
    assert probe["write_readable"].startswith("error:")
    assert probe["host_tmp"] == "error: FileNotFoundError"


def test_pytorch_cannot_be_imported_inside(probe):
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed (make torch): nothing to hide")
    assert probe["torch"] in ("empty", "absent")


def test_no_variable_of_the_grader_leaks_in(probe, monkeypatch):
    assert "GRADER_SECRET" not in probe["env"] and "PATH" in probe["env"]
    assert set(probe["env"]) <= {"HOME", "PATH", "LANG", "TMPDIR", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                                 "MPLBACKEND", "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                 "MKL_NUM_THREADS", "CS231N_NUM_THREADS", "OPENBLAS_CORETYPE",
                                 "OPENBLAS_L2_SIZE", "PWD", "LC_CTYPE"}


def test_private_entries_finds_closed_files_and_folders(tmp_path):
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a").write_text("a")
    (tmp_path / "open" / "b").write_text("b")
    (tmp_path / "open" / "b").chmod(0o640)
    (tmp_path / "shut").mkdir(mode=0o750)
    assert sorted(private_entries(str(tmp_path))) == [(str(tmp_path / "open" / "b"), False),
                                                      (str(tmp_path / "shut"), True)]


FILL = textwrap.dedent('''
    import os, sys
    held = []
    for i in range(128):  # 128 x 8 MB, each deleted while still open: no walk of the folder sees them
        path = os.path.join(sys.argv[1], f"f{i}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            os.posix_fallocate(fd, 0, 8 * 2**20)
        except OSError as exc:
            print("refused", i, exc.errno)
            break
        os.unlink(path)
        held.append(fd)
    else:
        print("allowed", len(held))
    sys.stdout.flush()
    sys.stdin.read()  # hold the files open until the grader has looked
''')


def test_a_sandboxs_folder_holds_no_more_than_its_limit_even_in_deleted_files(tmp_path):
    """In a process with mounts of its own (the grader's worker), the folder is a capped tmpfs."""
    script = textwrap.dedent(f'''
        import subprocess, sys
        from autograder.isolation import Limits, Sandbox, private_mounts
        assert private_mounts(), "no private mount namespace (not root?)"
        box = Sandbox({str(tmp_path / "work")!r}, limits=Limits(workdir_mb=256))
        open({str(tmp_path / "work" / "fill.py")!r}, "w").write({FILL!r})
        proc = box.popen([box.python, {str(tmp_path / "work" / "fill.py")!r}, {str(tmp_path / "work")!r}],
                         stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        out = proc.stdout.readline().decode()
        print(out.strip(), "|", "; ".join(box.observe(baseline=99)))
        box.stop(proc)
        box.release()
    ''')
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    word, held, errno = run.stdout.split()[:3]
    assert (word, errno) == ("refused", "28") and 24 <= int(held) < 32, run.stdout  # ENOSPC by 256 MB
    assert "your code filled its folder (the limit is 256 MB)" in run.stdout
    assert not (tmp_path / "work" / "fill.py").exists()  # it lived in the worker's own tmpfs


def test_the_groups_of_a_grader_that_is_gone_are_swept_and_no_others(tmp_path):
    from autograder.isolation import GROUP_PREFIX, Cgroups, cgroup_name, release_groups

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    left = Cgroups(cgroup_name(int(gone), tmp_path / "left"), 64 * 1024 * 1024)
    mine = Cgroups(cgroup_name(os.getpid(), tmp_path / "mine"), 64 * 1024 * 1024)
    # A grader in another PID namespace (a container) names its groups by its own pids, which
    # may be no process's here: that pid says nothing about whether its owner is gone.
    here = cgroup_name(int(gone), tmp_path / "theirs")
    elsewhere = Cgroups(here.replace(GROUP_PREFIX, f"{GROUP_PREFIX}1", 1), 64 * 1024 * 1024)
    assert left.available and mine.available and elsewhere.available, "no writable control groups here"
    try:
        release_groups(None)
        assert not any(d.exists() for d in left.dirs), "the gone grader's groups stayed"
        assert all(d.exists() for d in mine.dirs), "a living process's groups were removed"
        assert all(d.exists() for d in elsewhere.dirs), "another PID namespace's groups were removed"
    finally:
        left.release()
        mine.release()
        elsewhere.release()


def test_no_pth_file_of_the_graders_site_runs_inside(tmp_path):
    import glob

    site = [p for p in sys.path if p.endswith("site-packages") and glob.glob(os.path.join(p, "*.pth"))]
    assert site, "no .pth file in the grader's site-packages: nothing to test"
    box = Sandbox(tmp_path / "box")
    code = "import sys; print(sorted(m for m in sys.modules if 'editable' in m or 'distutils_hack' in m))"
    outside = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert outside.stdout.strip() != "[]", "the grader's own Python runs no .pth: nothing to test"
    proc = box.popen([box.python, "-c", code], stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.decode().strip() == "[]"
