"""The course folder nbgrader works in, and the nbgrader configuration that drives it.

Layout (nbgrader's own, under ``root``; everything here is generated, hence git-ignored)::

    source/<assignment>/            copied from notebooks/<assignment>/ by ``release``
    source/<assignment>/library/    the student edition of cs231n_lib for it (edition.py)
    release/<assignment>/           the student versions (nbgrader generate_assignment)
    submitted/<student>/<assignment>/   what students hand in
    autograded/<student>/<assignment>/  graded notebooks (instructor side)
    feedback/<student>/<assignment>/    HTML feedback for students
    gradebook.db                    the gradebook (any SQLAlchemy URL with ``db_url``)
    grades.csv                      ``nbgrader export``'s CSV
    exports/                        one CSV per assignment and Canvas's import file (exports.py)
    course.toml                     optional: course id, exchange, deadlines (deadlines.py)
    reports/<assignment>/<student>.json   score, reason, hints of the last grading
    .template/                      a second, student-free course with the same assignments;
                                    each submission is graded in a throw-away copy of it
"""

from __future__ import annotations

import compileall
import os
import shutil
import sys
from pathlib import Path

from traitlets.config import Config

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_ROOT = PACKAGE_DIR / "course"
DEFAULT_NOTEBOOKS = REPO_DIR / "notebooks"

# Files of the notebook folders that never belong in a course.
IGNORED = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]


def _venv_on_path() -> None:
    """nbgrader creates a gradebook by running ``alembic``: find it beside this Python."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


_venv_on_path()


def quiet_nbgrader_logs() -> None:
    """nbgrader's API logs every copied file at INFO; keep warnings and errors only."""
    import logging

    for name in ("traitlets", "NbGraderAPI", "nbgrader"):
        logging.getLogger(name).setLevel(logging.WARNING)


def base_config(root: Path, db_url: str) -> Config:
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = db_url
    c.CourseDirectory.ignore = IGNORED
    # No global exchange: the default points at a system folder that does not exist here.
    c.Exchange.root = str(root / ".exchange")
    c.NbGraderAPI.log_level = "WARN"
    return c


class Course:
    """One course folder: paths, configuration, and nbgrader's API on it."""

    def __init__(self, root: str | os.PathLike | None = None, notebooks: str | os.PathLike | None = None,
                 db_url: str | None = None):
        self.root = Path(root or DEFAULT_ROOT).resolve()
        self.notebooks = Path(notebooks or DEFAULT_NOTEBOOKS).resolve()
        self.db_url = db_url or f"sqlite:///{self.root / 'gradebook.db'}"

    # -- paths ---------------------------------------------------------------------------------
    def path(self, kind: str, student: str | None = None, assignment: str | None = None) -> Path:
        parts = [self.root, kind]
        if student is not None:
            parts.append(student)
        if assignment is not None:
            parts.append(assignment)
        return Path(*parts)

    @property
    def template_root(self) -> Path:
        return self.root / ".template"

    @property
    def template_db_url(self) -> str:
        return f"sqlite:///{self.template_root / 'gradebook.db'}"

    def report_path(self, student: str, assignment: str) -> Path:
        return self.root / "reports" / assignment / f"{student}.json"

    def released(self) -> list[str]:
        folder = self.root / "release"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def release_notebooks(self, assignment: str) -> list[Path]:
        return sorted(self.path("release", assignment=assignment).glob("*.ipynb"))

    def submissions(self, assignments: list[str] | None = None) -> list[tuple[str, str]]:
        """(student, assignment) for every folder under submitted/ of a released assignment."""
        wanted = set(assignments or self.released())
        found = []
        folder = self.root / "submitted"
        if folder.is_dir():
            for student in sorted(p for p in folder.iterdir() if p.is_dir()):
                for assignment in sorted(p for p in student.iterdir() if p.is_dir()):
                    if assignment.name in wanted:
                        found.append((student.name, assignment.name))
        return found

    def available_assignments(self) -> list[str]:
        """Assignment folders under ``notebooks/`` holding a notebook of the same name."""
        if not self.notebooks.is_dir():
            return []
        return sorted(p.name for p in self.notebooks.iterdir()
                      if (p / f"{p.name}.ipynb").is_file())

    # -- nbgrader ------------------------------------------------------------------------------
    def config(self) -> Config:
        from autograder.preprocessors import feedback_preprocessors

        c = base_config(self.root, self.db_url)
        c.GenerateFeedback.preprocessors = feedback_preprocessors()
        # The course's late-penalty rule for nbgrader's own autograde too (deadlines.py).
        from autograder.deadlines import load_settings, plugin_config

        plugin_config(c, load_settings(self.root))
        return c

    def api(self, config: Config | None = None, root: Path | None = None):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        quiet_nbgrader_logs()
        config = config or self.config()
        Path(config.Exchange.root).mkdir(parents=True, exist_ok=True)
        coursedir = CourseDirectory(config=config)
        return NbGraderAPI(coursedir=coursedir, config=config)

    def gradebook(self):
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url)

    # -- release -------------------------------------------------------------------------------
    def copy_source(self, assignment: str, root: Path) -> None:
        src = self.notebooks / assignment
        if not (src / f"{assignment}.ipynb").is_file():
            raise ValueError(f"no notebook {src / (assignment + '.ipynb')}; "
                             f"available: {', '.join(self.available_assignments()) or 'none'}")
        dest = root / "source" / assignment
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(*IGNORED))

    def edition_path(self, assignment: str, root: Path | None = None) -> Path:
        """Where the released edition of the library for ``assignment`` lives."""
        return Path(root or self.root) / "release" / assignment / "library"

    def check_edition_path(self, assignment: str) -> Path:
        """The edition the grader's checks run on (never released: see edition.build_check_edition)."""
        return self.template_root / "check-library" / assignment

    def release(self, assignments: list[str] | None = None, all_stubs: bool = False) -> list[str]:
        """Student versions of ``notebooks/<assignment>/`` into ``release/``, and the gradebook.

        Beside each student notebook goes ``library/``, the student edition of ``cs231n_lib``
        (autograder/edition.py): written into ``source/<assignment>/`` before nbgrader's
        generate_assignment, which copies it to ``release/<assignment>/``. ``all_stubs`` stubs
        every exercise, not only those of this assignment and later ones.
        The same assignments are generated in the student-free template course too.
        """
        from autograder.edition import build_check_edition, build_edition
        from autograder.exercises import catalogue

        assignments = assignments or self.available_assignments()
        if not assignments:
            raise ValueError(f"no assignment notebooks found under {self.notebooks}")
        main_db = Path(self.db_url[len("sqlite:///"):]) if self.db_url.startswith("sqlite:///") else None
        for root, db_url in ((self.template_root, self.template_db_url), (self.root, self.db_url)):
            root.mkdir(parents=True, exist_ok=True)
            if root == self.root and main_db is not None and not main_db.exists():
                # A new gradebook costs an `alembic` run; the template's empty one is the same.
                shutil.copy(self.template_root / "gradebook.db", main_db)
            config = base_config(root, db_url)
            api = self.api(config)
            for assignment in assignments:
                self.copy_source(assignment, root)
                build_edition(assignment, root / "source" / assignment / "library", all_stubs)
                result = api.generate_assignment(assignment, force=True, create=True)
                if not result["success"]:
                    raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                                       f"{result.get('error') or result.get('log')}")
        for assignment in assignments:
            forbidden = {name for ex in catalogue().get(assignment, {}).values() for name in ex.forbidden}
            build_check_edition(assignment, self.check_edition_path(assignment), forbidden)
            # The editions the sandboxes import at every submission, compiled once here: they
            # see them read-only, so each of their Python processes would compile the modules
            # again (notebook 06's imports: 30-40 ms of CPU). The students' release stays
            # sources only (nbgrader's exchange leaves bytecode out anyway).
            for library in (self.edition_path(assignment, self.template_root),
                            self.check_edition_path(assignment)):
                compileall.compile_dir(library, quiet=1)
        self.render_photo10(assignments)
        return assignments

    # -- data rendered once for grading ----------------------------------------------------------
    def photo10_crops(self) -> dict[str, Path]:
        """photo10's crops rendered once for grading: ``sandbox`` (the training and validation
        splits, which every student edition renders anyway) is read by the kernels and check
        children; ``grader`` (the test split) by the grader's own workers only."""
        folder = self.template_root / "photo10"
        return {"sandbox": folder / "train_val.npz", "grader": folder / "test.npz"}

    def render_photo10(self, assignments: list[str]) -> None:
        """Render photo10 (seconds of CPU) once here rather than in every process of every
        submission, when a notebook of ``assignments`` loads it; ``load_photo10`` reads the
        files where ``$CS231N_PHOTO10_CROPS`` names them (``grading.sandbox_settings``)."""
        if not any("load_photo10" in (self.notebooks / a / f"{a}.ipynb").read_text() for a in assignments):
            return
        from cs231n_lib.data import save_photo10_crops

        crops = self.photo10_crops()
        crops["sandbox"].parent.mkdir(parents=True, exist_ok=True)
        save_photo10_crops(crops["sandbox"], ("train", "val"))
        save_photo10_crops(crops["grader"], ("test",))
