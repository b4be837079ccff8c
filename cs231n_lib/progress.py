"""A small progress bar for long training runs, in a notebook or a terminal (no tqdm needed).

    bar = ProgressBar(total=400, desc="training")
    for it in range(400):
        ...
        bar.update(1, loss=f"{loss:.3f}")
        if it % 100 == 0:
            bar.write(f"iteration {it}")   # a log line that does not break the bar
    bar.close()

Where it draws:
- in a Jupyter kernel: one output area updated in place (IPython display handle), as HTML
  with a plain-text fallback; log lines from `write` are ordinary printed output;
- in a terminal (stdout is a tty): one line redrawn with a carriage return;
- elsewhere (a log file, a captured stream): no bar, only the `write` lines and a last line on
  `close`, so logs are not flooded with carriage returns.
Everything goes to stdout (never stderr: nbgrader zeroes a cell that writes to stderr).
"""

import sys
import time


def in_notebook():
    """True inside a Jupyter kernel (where a display handle can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def format_time(seconds):
    """Seconds as m:ss (or h:mm:ss)."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class _Rendered:
    """What the notebook displays: HTML <progress> with the text line as plain-text fallback."""

    def __init__(self, text, fraction):
        self.text, self.fraction = text, fraction

    def __repr__(self):
        return self.text

    def _repr_html_(self):
        from html import escape
        return (f'<progress value="{self.fraction:.4f}" max="1" style="width: 30ex"></progress>'
                f' <code>{escape(self.text)}</code>')


class ProgressBar:
    """Progress of `total` steps, starting from `initial`.

    Inputs:
    - total: number of steps; desc: a label.
    - initial: steps already done (a resumed run).
    - style: 'auto' (see the module docstring), 'notebook', 'terminal' or 'plain'.
    - file: stream for the terminal and plain styles (default sys.stdout at each write).
    - min_interval: seconds between redraws; redrawing every step would cost more than a step.
    - enabled: False makes every method a no-op.
    """

    def __init__(self, total, desc="", initial=0, style="auto", file=None, min_interval=0.1,
                 enabled=True, width=30):
        if style not in ("auto", "notebook", "terminal", "plain"):
            raise ValueError(f"unknown progress style {style!r}; expected 'auto', "
                             f"'notebook', 'terminal' or 'plain'")
        self.total, self.desc, self.n = int(total), desc, int(initial)
        self.enabled, self.width, self.min_interval = enabled, width, min_interval
        self._file = file
        self.postfix = {}
        self._start = time.monotonic()
        self._start_n = self.n
        self._last_draw = -float("inf")
        self._handle = None
        self._closed = False
        if style == "auto":
            if file is None and in_notebook():
                style = "notebook"
            elif getattr(self.file, "isatty", lambda: False)():
                style = "terminal"
            else:
                style = "plain"
        self.style = style
        if self.enabled:
            self._draw(force=True)

    @property
    def file(self):
        return self._file if self._file is not None else sys.stdout

    def text(self):
        """The one-line description: label, bar, count, elapsed<remaining, postfix."""
        frac = self.n / self.total if self.total else 1.0
        filled = int(round(self.width * min(frac, 1.0)))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self._start
        done = self.n - self._start_n
        remaining = elapsed / done * (self.total - self.n) if done > 0 else 0.0
        post = ", ".join(f"{k}={v}" for k, v in self.postfix.items())
        label = f"{self.desc}: " if self.desc else ""
        return (f"{label}|{bar}| {self.n}/{self.total} "
                f"[{format_time(elapsed)}<{format_time(remaining)}"
                f"{', ' + post if post else ''}]")

    def update(self, n=1, **postfix):
        """Advance by n steps; keyword arguments are shown after the counts (e.g. loss=...)."""
        if not self.enabled:
            return
        self.n += n
        self.postfix.update(postfix)
        self._draw(force=self.n >= self.total)

    def write(self, message):
        """Print a line of text above (terminal) or beside (notebook) the bar."""
        if not self.enabled:
            return
        if self.style == "terminal":
            self.file.write("\r" + " " * len(self.text()) + "\r")
            self.file.write(message + "\n")
            self._draw(force=True)
        else:
            print(message, file=self.file, flush=True)

    def close(self):
        """Final redraw; the terminal line is ended, plain style prints its only line."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        if self.style == "plain":
            print(self.text(), file=self.file, flush=True)
            return
        self._draw(force=True)
        if self.style == "terminal":
            self.file.write("\n")
            self.file.flush()

    def _draw(self, force=False):
        now = time.monotonic()
        if self.style == "plain" or (not force and now - self._last_draw < self.min_interval):
            return
        self._last_draw = now
        if self.style == "terminal":
            self.file.write("\r" + self.text())
            self.file.flush()
        else:
            from IPython.display import display
            rendered = _Rendered(self.text(), self.n / self.total if self.total else 1.0)
            if self._handle is None:
                self._handle = display(rendered, display_id=True)
            else:
                self._handle.update(rendered)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
