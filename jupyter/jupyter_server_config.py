"""Server settings for the course's JupyterLab (read because lab.py sets JUPYTER_CONFIG_DIR here)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent

c = get_config()  # noqa: F821 -- traitlets provides get_config() to config files

# Only this machine may connect; the token (or the one Jupyter generates) guards it.
c.ServerApp.ip = "127.0.0.1"

# Course-wide setting defaults, e.g. no "fetch Jupyter news?" pop-up over the notebook.
# A student's own settings (Settings menu) still win over these.
c.LabApp.app_settings_dir = str(HERE / "lab-settings")

# custom/custom.css adds the course's note to nbgrader's Validate dialog.
c.LabApp.custom_css = True

# One pipeline: the formgrader's Autograde and Generate Feedback buttons grade exactly as
# `python -m autograder grade` does (autograder/formgrader.py says how and why). `update`, so the
# extensions enabled elsewhere (jupyterlab, nbgrader's own) stay enabled.
c.ServerApp.jpserver_extensions.update({"autograder.formgrader": True})
