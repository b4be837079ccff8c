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
    proc = box.popen([box.python, str(readable / "probe.py"), str(readable), str(host_file)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={})
    out, err = proc.communicate(timeout=120)
    box.release()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def test_the_probe_runs_unprivileged(probe):
    assert probe["uid"] == 65534


def test_what_other_accounts_may_not_read_is_masked_even_for_a_root_grader(probe):
    assert probe["shadow"] in ("", "error: PermissionError")
    assert probe["private"] in ("", "error: PermissionError")
    assert probe["private_folder"].startswith("error:")
    assert probe["public"] == "course data"


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
