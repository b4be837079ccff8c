"""The two dependency lists (pip's and conda's) must not drift, and the two commands must exist."""

import importlib.util
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirement(text):
    """'numpy>=2.0' -> ('numpy', '>=2.0'), names normalised as pip does."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", text)
    assert match, f"cannot parse requirement {text!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(2).replace(" ", "")


def pip_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(_requirement(r) for r in listed)


def conda_requirements():
    """The entries under `dependencies:` in environment.yml, less python and pip themselves."""
    entries, inside = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            inside = True
        elif inside and re.match(r"\s+-\s", line):
            name, spec = _requirement(line.split("-", 1)[1].split("#")[0])
            if name not in {"python", "pip"}:
                entries[name] = spec
        elif inside and line and not line.startswith((" ", "#")):
            inside = False
    return entries


def test_conda_and_pip_list_the_same_packages_and_bounds():
    pip, conda = pip_requirements(), conda_requirements()
    assert pip == conda, (
        f"only in pyproject.toml: {sorted(set(pip.items()) - set(conda.items()))}; "
        f"only in environment.yml: {sorted(set(conda.items()) - set(pip.items()))}"
    )


def test_the_guide_s_runtime_dependencies_are_listed():
    assert {"numpy", "matplotlib", "ipywidgets", "jupyterlab", "nbgrader"} <= set(pip_requirements())
    assert pip_requirements()["jupyterlab"] == ">=4.2"  # nbgrader 0.9.6 needs it


def test_make_lab_launches_jupyterlab_on_the_notebooks():
    dry_run = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "jupyter/lab.py" in dry_run.stdout
    spec = importlib.util.spec_from_file_location("course_lab", ROOT / "jupyter" / "lab.py")
    lab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab)
    argv, env = lab.lab_command(8888)
    assert argv[1:3] == ["-m", "jupyterlab"]
    assert any(arg.endswith("/lab/tree/notebooks") for arg in argv), argv
    assert env["JUPYTER_CONFIG_DIR"] == str(ROOT / "jupyter")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in (ROOT / "README.md").read_text()
