"""JupyterHub configuration of the course (``make hub`` starts the hub with it, via hub/run.py).

Read by JupyterHub running as root. What it needs from the machine comes from ``STATE/hub.json``,
written by hub/setup.py (``CS231N_HUB_STATE`` names the state folder, ``CS231N_HUB_PORT`` the
port; hub/run.py sets both):

* **login**: PAM, i.e. the machine's own accounts, restricted to the course's instructor and
  students; the instructor is also the hub's admin. To use the institution's single sign-on
  instead, replace the authenticator here (README, "The course on a JupyterHub");
* **servers**: each user's JupyterLab is started by the hub as that user (LocalProcessSpawner),
  from the shared venv, with ``JUPYTER_CONFIG_DIR`` pointing at the role's configuration
  (hub/setup.py): students see the Assignments tab and Validate, the instructor the formgrader
  too. A student's kernels find the assignment's student edition of the library beside the
  notebook (``PYTHONPATH=library``, relative to the notebook's folder, where the kernel starts);
* **network**: the hub, its API and the proxy listen on 127.0.0.1 only.
"""

import json
import os
import pwd
from pathlib import Path

c = get_config()  # noqa: F821 -- JupyterHub provides get_config() to its config file

STATE = Path(os.environ.get("CS231N_HUB_STATE", "/srv/cs231n-hub"))
SETTINGS = json.loads((STATE / "hub.json").read_text())
PORT = int(os.environ.get("CS231N_HUB_PORT", "8000"))
INSTRUCTOR = SETTINGS["instructor"]
STUDENTS = SETTINGS["students"]
VENV = Path(SETTINGS["venv"])

# -- where it listens, where it keeps its state -------------------------------------------------
c.JupyterHub.bind_url = f"http://127.0.0.1:{PORT}"
# The hub's API and the proxy's API, also on 127.0.0.1 (the next two ports unless set).
API_PORT = int(os.environ.get("CS231N_HUB_API_PORT", PORT + 1))
PROXY_API_PORT = int(os.environ.get("CS231N_HUB_PROXY_PORT", PORT + 2))
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{API_PORT}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.command = [SETTINGS["proxy"]]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# -- who may log in -------------------------------------------------------------------------
# PAM: the accounts hub/setup.py created. An institution's authenticator goes here instead, e.g.
#   c.JupyterHub.authenticator_class = "generic-oauth"   (pip install oauthenticator)
#   c.JupyterHub.authenticator_class = "ltiauthenticator.lti13.authenticator.LTI13Authenticator"
# keeping allowed_users / admin_users (or the authenticator's own group rules), and the Unix
# accounts of the same names, which the servers run as.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {INSTRUCTOR, *STUDENTS}
c.Authenticator.admin_users = {INSTRUCTOR}
c.PAMAuthenticator.open_sessions = False  # no systemd-logind in a container

# -- each user's server ---------------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(VENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
# Two shared cores: a server (and nbgrader's extensions) may take a while to come up.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# Nothing of root's environment but the locale (the hub's PYTHONPATH must not reach the users).
c.Spawner.env_keep = ["LANG", "LC_ALL"]


def role_environment(spawner):
    """The role's Jupyter configuration, and for the instructor the course folder's location."""
    name = spawner.user.name
    role = "instructor" if name == INSTRUCTOR else "student"
    spawner.environment["JUPYTER_CONFIG_DIR"] = SETTINGS["config_dirs"][role]
    # That folder is root's: each user's own settings and workspaces stay in their home.
    home = pwd.getpwnam(name).pw_dir
    spawner.environment["JUPYTERLAB_SETTINGS_DIR"] = f"{home}/.jupyter/lab/user-settings"
    spawner.environment["JUPYTERLAB_WORKSPACES_DIR"] = f"{home}/.jupyter/lab/workspaces"
    spawner.environment["PATH"] = f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    if role == "instructor":
        # `python -m autograder ...` in the instructor's terminal works on the hub's course.
        spawner.environment["AUTOGRADER_COURSE"] = SETTINGS["course"]
    else:
        # The fetched assignment's student edition of cs231n_lib, beside the notebook.
        spawner.environment["PYTHONPATH"] = "library"


c.Spawner.pre_spawn_hook = role_environment

# No idle JupyterLab of a past session should linger; the hub stops with `make hub` anyway.
c.JupyterHub.cleanup_servers = True
