"""photo10 rendered once per course for grading (Course.render_photo10): the sandboxes are
pointed at the training and validation crops only, the grader's worker at the test crops too."""

import json
import os
import subprocess
import textwrap

import nbformat
import numpy as np
import pytest

from autograder.course import Course
from autograder.grading import SubmissionJob, sandbox_settings, worker_env
from autograder.kernel import sandbox_from_spec
from cs231n_lib.data import PHOTO10_CROPS_VARIABLE


def course_with(tmp_path, source: str) -> Course:
    folder = tmp_path / "notebooks" / "nb"
    folder.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), folder / "nb.ipynb")
    return Course(tmp_path / "course", tmp_path / "notebooks")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    course = course_with(tmp_path_factory.mktemp("photo10"),
                         "from cs231n_lib.data import load_photo10\nphoto10 = load_photo10(num_test=0)")
    course.render_photo10(["nb"])
    return course


def test_a_course_that_loads_photo10_gets_its_crops_rendered_once(rendered):
    crops = rendered.photo10_crops()
    with np.load(crops["sandbox"]) as f:
        assert sorted(f.files) == ["train", "train_sha256", "val", "val_sha256"]   # no test split
    with np.load(crops["grader"]) as f:
        assert sorted(f.files) == ["test", "test_sha256"]


def test_a_course_that_does_not_load_photo10_renders_nothing(tmp_path):
    course = course_with(tmp_path, "from cs231n_lib.data import load_digits\ndata = load_digits()")
    course.render_photo10(["nb"])
    assert not any(path.exists() for path in course.photo10_crops().values())
    settings = sandbox_settings(course, SubmissionJob(str(course.root), "s", "nb"))
    assert settings["readable"] == [] and settings["env"] == {} and worker_env(course) == {}


def test_the_sandboxes_are_given_the_training_and_validation_crops_only(rendered):
    crops = rendered.photo10_crops()
    settings = sandbox_settings(rendered, SubmissionJob(str(rendered.root), "s", "nb"))
    assert settings["readable"] == [str(crops["sandbox"])]
    assert settings["env"] == {PHOTO10_CROPS_VARIABLE: str(crops["sandbox"])}
    assert worker_env(rendered) == {
        PHOTO10_CROPS_VARIABLE: os.pathsep.join([str(crops["sandbox"]), str(crops["grader"])])}


PROBE = textwrap.dedent("""
    import json, os, sys
    def readable(path):
        try:
            open(path, "rb").close()
            return True
        except OSError:
            return False
    print(json.dumps({"variable": os.environ.get(sys.argv[1]), "train_val": readable(sys.argv[2]),
                      "test": readable(sys.argv[3])}))
""")


def test_inside_a_sandbox_the_test_crops_are_out_of_reach(rendered, tmp_path):
    crops = rendered.photo10_crops()
    settings = sandbox_settings(rendered, SubmissionJob(str(rendered.root), "s", "nb"))
    box = sandbox_from_spec({**settings, "workdir": str(tmp_path / "box")})
    proc = box.popen([box.python, "-c", PROBE, PHOTO10_CROPS_VARIABLE, str(crops["sandbox"]),
                      str(crops["grader"])], stdout=subprocess.PIPE)
    seen = json.loads(proc.communicate(timeout=120)[0])
    assert seen == {"variable": str(crops["sandbox"]), "train_val": True, "test": False}
