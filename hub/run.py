"""``make hub``: set up (hub/setup.py) and start the course's JupyterHub on 127.0.0.1.

    python3 hub/run.py [--port 8000] [--state /srv/cs231n-hub] [setup options...]

Runs as root: the hub logs users in with PAM and starts each user's JupyterLab as that user.
Prints the address and where the accounts' passwords are, then runs JupyterHub in the
foreground (Ctrl-C stops it and every user's server).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import setup as hub_setup  # noqa: E402  (hub/setup.py, beside this file)


def hub_command(settings: dict, port: int) -> tuple[list[str], dict]:
    """The argv and environment that start JupyterHub with the course's configuration."""
    venv = Path(settings["venv"])
    argv = [str(venv / "bin" / "jupyterhub"), "-f", str(HERE / "jupyterhub_config.py")]
    env = dict(os.environ, CS231N_HUB_STATE=settings["state"], CS231N_HUB_PORT=str(port),
               PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    env.pop("PYTHONPATH", None)
    return argv, env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--state", default=str(hub_setup.DEFAULT_STATE))
    parser.add_argument("--prefix", default=str(hub_setup.DEFAULT_PREFIX))
    parser.add_argument("--instructor", default="instructor")
    parser.add_argument("--students", default="student1,student2")
    parser.add_argument("--course-id", default="cs231n")
    args = parser.parse_args(argv)
    settings = hub_setup.setup(Path(args.prefix), Path(args.state), args.instructor,
                               [s for s in args.students.split(",") if s], args.course_id)
    print(f"\nThe course's JupyterHub: http://127.0.0.1:{args.port}/\n"
          f"  instructor: {settings['instructor']}   students: {', '.join(settings['students'])}\n"
          f"  passwords:  {Path(settings['state']) / 'accounts.json'} (root only)\n"
          f"  course:     {settings['course']} (course.toml: deadlines, late penalty, extensions)\n"
          f"  exchange:   {settings['exchange']} (course id {settings['course_id']})\n", flush=True)
    command, env = hub_command(settings, args.port)
    os.chdir(settings["state"])
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
