# nbgrader settings for the course's JupyterLab (Validate button, assignment list, formgrader):
# the course configuration from autograder/, unchanged -- the course folder autograder/course,
# its exchange, and Validate's timeout and wording.
from pathlib import Path

load_subconfig(str(Path(__file__).resolve().parents[1] / "autograder" / "nbgrader_config.py"))  # noqa: F821

# nbgrader never creates the exchange itself; without it the assignment list and formgrader
# only show "the exchange directory does not exist".
Path(c.Exchange.root).mkdir(parents=True, exist_ok=True)  # noqa: F821
