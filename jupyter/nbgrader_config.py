# nbgrader settings for the course's JupyterLab (Validate button, assignment list, formgrader):
# the course configuration from autograder/, unchanged -- the course folder autograder/course,
# its exchange, and Validate's timeout and wording.
import os
from pathlib import Path

load_subconfig(str(Path(__file__).resolve().parents[1] / "autograder" / "nbgrader_config.py"))  # noqa: F821

# `python jupyter/lab.py --course DIR` (the browser test) opens another course folder instead.
if os.environ.get("AUTOGRADER_COURSE"):
    from autograder.student_config import configure

    configure(c, Path(os.environ["AUTOGRADER_COURSE"]))  # noqa: F821

# The formgrader's Autograde grades with the options of `python -m autograder grade` (its
# defaults; autograder/formgrader.py). To change them for the formgrader, e.g.:
#   c.CourseGrading.cell_timeout = 30          # seconds per cell          (grade --timeout)
#   c.CourseGrading.submission_timeout = 900   # seconds per submission    (--submission-timeout)
#   c.CourseGrading.memory_mb = 3072           # memory cap                (--memory-mb)
#   c.CourseGrading.max_output_lines = 1000    # output lines per cell     (--max-output-lines)

# nbgrader never creates the exchange itself; without it the assignment list and formgrader
# only show "the exchange directory does not exist".
Path(c.Exchange.root).mkdir(parents=True, exist_ok=True)  # noqa: F821
