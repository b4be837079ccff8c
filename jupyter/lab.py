"""Start the course's JupyterLab: `make lab` and tests/notebooks/test_browser.py both come through here.

    python jupyter/lab.py [--port N] [--token T] [--no-browser] [--notebook-dir DIR] [--course DIR]
                          [extra args]

Jupyter reads its configuration from this folder (JUPYTER_CONFIG_DIR): jupyter_server_config.py,
the setting defaults in lab-settings/, custom/custom.css and nbgrader_config.py (which nbgrader's
Validate button, assignment list and formgrader read).  Everything else is the user's own.
The formgrader's Autograde and Generate Feedback run the course's grading pipeline
(autograder/formgrader.py, enabled in jupyter_server_config.py).  ``--course DIR`` opens another
course folder than autograder/course; it must lie inside the server's root folder.
"""

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def lab_command(port, token=None, open_browser=True, notebook_dir=REPO, extra=(), course=None):
    """The argv and environment that start JupyterLab with the course configuration."""
    root = Path(notebook_dir).resolve()
    argv = [sys.executable, "-m", "jupyterlab", f"--port={port}", f"--ServerApp.root_dir={root}"]
    if root == REPO:
        # The server's root is the repository, so nbgrader's formgrader can reach the course
        # folder autograder/course; the file browser opens on the notebooks, in order.
        argv.append("--LabApp.default_url=/lab/tree/notebooks")
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        argv.append("--no-browser")
    argv.extend(extra)

    env = dict(os.environ)
    env["JUPYTER_CONFIG_DIR"] = str(HERE)
    if course is not None:  # read by nbgrader_config.py here
        env["AUTOGRADER_COURSE"] = str(Path(course).resolve())
    # A batch setting such as MPLBACKEND=Agg would turn every plt.show() in the kernels into a no-op.
    env.pop("MPLBACKEND", None)
    return argv, env


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--token", help="access token (default: Jupyter makes one and prints the URL)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.add_argument("--notebook-dir", default=str(REPO),
                        help="the server's root folder (default: the repository, opened on notebooks/)")
    parser.add_argument("--course", default=None,
                        help="the course folder of the formgrader (default: autograder/course); "
                             "inside the root folder")
    opts, extra = parser.parse_known_args(args)
    argv, env = lab_command(opts.port, opts.token, not opts.no_browser, opts.notebook_dir, extra,
                            opts.course)
    if os.name == "posix":
        os.execve(argv[0], argv, env)  # same process id, so a caller can stop the server directly
    import subprocess
    return subprocess.call(argv, env=env)


if __name__ == "__main__":
    sys.exit(main())
