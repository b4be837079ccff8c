# nbgrader configuration of the course, for JupyterLab (`make lab`) and nbgrader run by hand:
# point Jupyter at it with  JUPYTER_CONFIG_PATH=<repo>/autograder  or copy it into the folder
# the server starts in. It sets the course folder (autograder/course), an exchange inside it,
# and Validate messages that say hidden checks run only at grading.
from autograder.student_config import configure

configure(get_config())  # noqa: F821 (traitlets provides get_config)
