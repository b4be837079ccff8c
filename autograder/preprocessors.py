"""nbgrader preprocessors that make autograding honest, registered through nbgrader's config.

Autograding (``Autograde.autograde_preprocessors``):

* :class:`GuardedExecute` -- nbgrader's ``Execute`` with its kernel in a sandbox
  (:mod:`autograder.kernel`), except that a cell that outlives its timeout *and ignores the
  interrupt* (or kills the kernel) fails on its own: the kernel is stopped, the cells after it are
  marked "not run", and grading goes on. Hidden test cells are not run in the kernel at all:
  nothing of them is there for the student's code to read or to patch. Nor are the course's
  experiment cells, nor the graded cells the check child runs in their stead (tagged
  ``graded-outside``, :mod:`autograder.experiments`), unless ``run_experiments`` is set.
* :class:`StderrToStdout` -- nbgrader zeroes any graded cell that wrote to stderr (a harmless
  warning); stderr is shown as ordinary output instead.
* :class:`OutsideChecks` -- **every point is decided here, in the trusted grader.** The checks
  (:mod:`autograder.checks`) call the student's functions in a sandboxed child and compare what
  they return with the reference outputs computed in this process. Each test cell -- visible or
  hidden -- keeps what the kernel printed as plain text, and gets the grader's verdict as its only
  scoring output: an ``execute_result`` with the points (nbgrader's partial credit) or an error.
  Printed text, a kernel's ``execute_result``, a patched ``print`` or ``np.allclose`` earn nothing.
* :class:`SafeOutput` -- only plain text and raster pictures survive in outputs, and a written
  answer's HTML is escaped: no markup a student wrote runs in the instructor's formgrader or in a
  feedback page.
* :class:`CapOutput` -- no output, and no notebook, larger than the grader allows (nbgrader's
  ``LimitOutput`` counts lines; five lines of 10 MB are one line each).

Feedback (``GenerateFeedback.preprocessors``):

* :class:`HideHiddenTests` -- hidden test code and anything echoing it (tracebacks) never reach
  the feedback HTML.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.v4 import new_output
from nbformat.validator import NotebookValidationError
from traitlets import Bool, Dict, Float, Int, List, Unicode

from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from autograder.checks import Verdict, judge
from autograder.experiments import NOT_RUN, RUN_OUTSIDE, is_experiment, is_graded_outside
from autograder.restore import grade_id, is_solution

HIDDEN_BEGIN = "BEGIN HIDDEN TESTS"
HIDDEN_END = "END HIDDEN TESTS"
GRADE_ID = re.compile(r"^(?P<exercise>.+)-(?P<kind>visible(?:-\d+)?|hidden)$")


def is_hidden_test(cell) -> bool:
    return cell.cell_type == "code" and (HIDDEN_BEGIN in cell.source
                                         or (grade_id(cell) or "").endswith("-hidden"))


def error_output(ename: str, message: str):
    return new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


def notes_of(resources) -> list[str]:
    return resources.setdefault("autograder", {}).setdefault("notes", [])


class GuardedExecute(Execute):
    """``Execute`` that survives a kernel that will not stop or that dies."""

    run_experiments = Bool(False, help="Run the experiment cells too (they earn no points)"
                           ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped_reason = None
        self._notes = notes_of(resources if resources is not None else {})
        nb, resources = super().preprocess(nb, resources, km)
        for cell in nb.cells:  # again: a later update_display_data rewrites an earlier cell
            if cell.cell_type == "code":
                well_formed(cell)
        return nb, resources

    def create_kernel_manager(self):
        """The kernel this worker's spare started (autograder.spare), when it was started as
        this one would be; a new one otherwise."""
        from autograder import spare

        if not self.kernel_name:
            self.kernel_name = self.nb.metadata.get("kernelspec", {}).get("name") or ""
        km = spare.take_kernel(self.kernel_name)
        self._adopted = km is not None
        if self._adopted:
            self.km = km
            return km
        return super().create_kernel_manager()

    async def async_start_new_kernel_client(self):
        adopted, self._adopted = getattr(self, "_adopted", False), False
        if not adopted:
            return await super().async_start_new_kernel_client()
        notes = len(self._notes)
        try:
            return await super().async_start_new_kernel_client()
        except Exception:
            # The spare's kernel died between its start and this job, with none of this
            # submission's code run in it: a kernel of its own, as without a spare.
            del self._notes[notes:]
            self.create_kernel_manager()
            await self.async_start_new_kernel()
            return await super().async_start_new_kernel_client()

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _async_cleanup_kernel(self) -> None:
        km = self.km
        await super()._async_cleanup_kernel()
        # What the student's code left in its sandbox (autograder.kernel), said in the reason.
        self._notes.extend(getattr(km, "observations", []))

    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        cell = await self._execute_guarded(cell, cell_index, execution_count, store_history)
        if cell.cell_type == "code":
            well_formed(cell)
        return cell

    async def _execute_guarded(self, cell, cell_index, execution_count, store_history):
        if is_hidden_test(cell):
            cell.outputs = []
            return cell
        if is_experiment(cell) and not self.run_experiments:
            cell.outputs = [new_output("stream", name="stdout", text=NOT_RUN)]
            return cell
        if is_graded_outside(cell) and not self.run_experiments:
            cell.outputs = [new_output("stream", name="stdout", text=RUN_OUTSIDE)]
            return cell
        if getattr(self, "_stopped_reason", None) is not None:
            if cell.cell_type == "code" and cell.source.strip():
                cell.outputs = [error_output("NotRun", self._stopped_reason)]
            return cell
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except CellTimeoutError:
            message = (f"this cell ran longer than {self.timeout} s and did not stop when "
                       "interrupted, so its kernel was stopped; the cells after it were not run")
            cell.outputs.append(error_output("CellTimeoutError", message))
            self._stopped_reason = "not run: an earlier cell would not stop and its kernel was stopped"
            self._notes.append(f"cell {cell_index + 1} ran past the {self.timeout} s limit and ignored "
                               "the interrupt: the kernel was stopped there")
            try:
                await ensure_async(self.km.shutdown_kernel(now=True))
            except Exception:  # already gone is fine
                pass
            return cell
        except RecursionError:  # a message nested past what the grader decodes
            message = ("the kernel sent a message nested too deeply to read, so it was stopped; "
                       "the cells after it were not run")
            cell.outputs.append(error_output("KernelMessageError", message))
            self._stopped_reason = "not run: the kernel sent an unreadable message in an earlier cell"
            self._notes.append(f"cell {cell_index + 1} sent an unreadable message: the kernel was stopped")
            try:
                await ensure_async(self.km.shutdown_kernel(now=True))
            except Exception:  # already gone is fine
                pass
            return cell
        except DeadKernelError:
            message = ("the kernel died while running this cell (the memory cap, a crash, or an "
                       "exit); the cells after it were not run")
            cell.outputs.append(error_output("DeadKernelError", message))
            self._stopped_reason = "not run: the kernel died in an earlier cell"
            self._notes.append(f"the kernel died in cell {cell_index + 1}")
            return cell

    execute_cell = run_sync(async_execute_cell)

    def process_message(self, msg, cell, cell_index):
        # nbclient validates each output as it arrives: a kernel that sends an invalid one (or
        # updates an earlier output into one) would make the whole notebook a grading error.
        try:
            return super().process_message(msg, cell, cell_index)
        except NotebookValidationError:
            cell.outputs.append(new_output("stream", name="stdout",
                                           text="[an output the kernel sent was malformed: not shown]\n"))
            return None


def _count(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _string(value, limit: int = 1_000_000) -> str:
    if isinstance(value, list):
        value = "".join(v for v in value if isinstance(v, str))
    return value[:limit] if isinstance(value, str) else ""


def well_formed(cell) -> None:
    """Every field a kernel filled in, of the type nbformat requires.

    A hostile kernel speaks the protocol as it likes (a text ``execution_count``, a stream
    called anything, a traceback of numbers); a notebook that fails nbformat's validation
    would be a grading error. What cannot be kept is replaced by what can.
    """
    cell.execution_count = _count(cell.get("execution_count"))
    kept = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type") if isinstance(output, dict) else None
        if kind == "stream":
            name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
            kept.append(new_output("stream", name=name, text=_string(output.get("text"))))
        elif kind in ("display_data", "execute_result"):
            data = output.get("data") if isinstance(output.get("data"), dict) else {}
            data = {k: (_string(v) if isinstance(v, (str, list)) else v) for k, v in data.items()
                    if isinstance(k, str) and (isinstance(v, (str, list))
                                               or (isinstance(v, dict) and k.endswith("json")))}
            extra = {"execution_count": _count(output.get("execution_count"))} \
                if kind == "execute_result" else {}
            kept.append(new_output(kind, data=data or {"text/plain": ""}, **extra))
        elif kind == "error":
            trace = output.get("traceback")
            kept.append(new_output("error", ename=_string(output.get("ename"), 1000),
                                   evalue=_string(output.get("evalue"), 100_000),
                                   traceback=[t for t in trace if isinstance(t, str)]
                                   if isinstance(trace, list) else []))
        else:
            kept.append(new_output("stream", name="stdout",
                                   text="[an output of an unknown kind is not shown]\n"))
    cell.outputs = kept


class StderrToStdout(NbGraderPreprocessor):
    """Show stderr as ordinary output, so a warning does not zero a correct answer."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


def _kernel_text(output, limit: int = 20_000):
    """A kernel output as plain text that cannot score: errors and results become printed text."""
    if output.output_type == "stream":
        output.name = "stdout"
        return output
    if output.output_type == "error":
        text = "\n".join(output.get("traceback") or [f"{output.ename}: {output.evalue}"])
        return new_output("stream", name="stdout", text=f"(in your kernel) {text[:limit]}\n")
    if output.output_type == "execute_result":
        text = output.get("data", {}).get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        return new_output("stream", name="stdout", text=text[:limit] + "\n")
    return output  # display_data: pictures, never read as a score


class OutsideChecks(NbGraderPreprocessor):
    """Decide every test cell's points from the checks run outside the kernel."""

    exercise_modules = List(Unicode(), help="Extra exercise module files (tests)").tag(config=True)
    timeout = Float(30, help="Seconds each cell or check may run outside the kernel").tag(config=True)
    sandbox = Dict(help="Settings of the check child's sandbox (autograder.kernel.sandbox_from_spec)"
                   ).tag(config=True)

    def preprocess(self, nb, resources):
        from autograder import spare
        from autograder.checks import exercises_for, run_checks
        from autograder.isolation import AdoptingLauncher, ChildLauncher
        from autograder.kernel import sandbox_from_spec

        info = resources["nbgrader"]
        exercises = exercises_for(info["assignment"], self.exercise_modules) or \
            exercises_for(info["notebook"], self.exercise_modules)
        verdicts: dict[str, Verdict] = {}
        if exercises:
            setup = next((c.source for c in nb.cells if grade_id(c) == "setup"), None)
            if setup is None:
                setup = next((c.source for c in nb.cells if c.cell_type == "code"), "")
            cells = [(grade_id(c), c.source) for c in nb.cells
                     if c.cell_type == "code" and is_solution(c) and grade_id(c)]
            adopted = spare.take_checks()  # the child this worker's spare started
            launcher = (AdoptingLauncher(*adopted) if adopted is not None
                        else ChildLauncher(sandbox_from_spec(self.sandbox)))
            outside = run_checks(exercises, setup, cells, launcher, timeout=self.timeout)
            verdicts = judge(exercises, outside)
        for cell in nb.cells:
            self._apply(cell, verdicts)
        resources.setdefault("autograder", {})["verdicts"] = {
            name: asdict(v) for name, v in verdicts.items()}
        return nb, resources

    def _apply(self, cell, verdicts) -> None:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade") \
                or is_solution(cell):
            return
        kept = [_kernel_text(o) for o in cell.outputs]
        match = GRADE_ID.match(grade_id(cell) or "")
        v = verdicts.get(match["exercise"]) if match else None
        points = float(cell.metadata["nbgrader"].get("points", 0))
        if v is None:
            cell.outputs = kept + [error_output(
                "NoCheck", "no check of the grader covers this cell, so it cannot score")]
            return
        if v.zero_reason:
            cell.outputs = kept + [error_output("ForbiddenCall" if v.forbidden else "GraderTampering",
                                                v.zero_reason)]
            return
        if match["kind"] == "hidden":
            text = "\n".join(v.lines + [f"hint: {h}" for h in v.hints])
            score = min(points, round(points * v.hidden_fraction, 6))
            text += (f"\nhidden checks: {v.hidden_passed} of {v.hidden_total} passed -> "
                     f"{score:g} of {points:g} points\n")
            cell.outputs = [new_output("stream", name="stdout", text=text),
                            new_output("execute_result", data={"text/plain": repr(score)},
                                       execution_count=cell.get("execution_count"))]
        elif v.visible_ok:
            cell.outputs = kept + [
                new_output("stream", name="stdout",
                           text=f"the grader re-ran these checks on your {v.exercise}: passed\n"),
                new_output("execute_result", data={"text/plain": repr(points)},
                           execution_count=cell.get("execution_count"))]
        else:
            cell.outputs = kept + [error_output(
                "OutsideCheckFailed",
                f"the grader re-ran these checks on your {v.exercise} outside your kernel, and they "
                "failed: " + "; ".join(v.visible_failures))]


class CapOutput(NbGraderPreprocessor):
    """Cap every text output, every picture, and the notebook's outputs in total (bytes)."""

    max_text = Int(20_000, help="Characters of one text output").tag(config=True)
    max_picture = Int(1_000_000, help="Bytes of one picture (base64)").tag(config=True)
    max_total = Int(1_500_000, help="Bytes of all outputs and sources of a notebook").tag(config=True)

    def _cut(self, text) -> str:
        if isinstance(text, list) and all(isinstance(t, str) for t in text):
            text = "".join(text)
        elif not isinstance(text, str):
            text = json.dumps(text)
        text = str(text)
        if len(text) <= self.max_text:
            return text
        self._cut_count = getattr(self, "_cut_count", 0) + 1
        return text[:self.max_text] + f"\n[... {len(text) - self.max_text} more characters cut]\n"

    def preprocess(self, nb, resources):
        total, self._cut_count = 0, 0
        for cell in nb.cells:
            if len(cell.source) > self.max_text * 5:
                cell.source = cell.source[:self.max_text * 5] + "\n# [... the rest of this cell was cut]"
            total += len(cell.source)
            if cell.cell_type != "code":
                continue
            kept = []
            for output in cell.outputs:
                self._cap(output)
                size = len(json.dumps(output))
                scoring = output.output_type in ("execute_result", "error")
                if total + size > self.max_total and not scoring:
                    self._cut_count += 1
                    output = new_output("stream", name="stdout",
                                        text="[output removed: this notebook's output is over the "
                                             f"{self.max_total // 1000} kB limit]\n")
                    size = len(output.text)
                total += size
                kept.append(output)
            cell.outputs = kept
        if self._cut_count:
            notes_of(resources).append(f"{self._cut_count} output(s) over the size limit were cut")
        return nb, resources

    def _cap(self, output) -> None:
        if output.output_type == "stream":
            output.text = self._cut(output.text)
        elif output.output_type == "error":
            output.evalue = self._cut(output.evalue)[:2000]
            output.traceback = [self._cut(line) for line in output.traceback[:100]]
        for mime, value in list(output.get("data", {}).items()):
            if mime.startswith("image/") and len(str(value)) > self.max_picture:
                del output.data[mime]
                output.data["text/plain"] = f"[a picture of {len(str(value))} bytes was removed]"
            elif mime.startswith("text/"):
                output.data[mime] = self._cut(value)


# What a student's output may show the instructor and the student: text and raster pictures.
# HTML, JavaScript, SVG, Markdown and widget views would run or render the student's markup in
# the formgrader (the instructor's session) and in the feedback pages.
SAFE_MIMES = ("text/plain", "image/png", "image/jpeg", "image/gif")


class SafeOutput(NbGraderPreprocessor):
    """Keep only plain text and raster pictures of every output; escape HTML in written answers.

    Everything the grader adds is plain text too, so nothing in a graded notebook is markup that
    a student wrote.
    """

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            cell.pop("attachments", None)
            if cell.cell_type == "markdown" and is_solution(cell):
                cell.source = escape_markup(cell.source)
            if cell.cell_type != "code":
                continue
            kept = []
            for output in cell.outputs:
                if output.output_type in ("display_data", "execute_result"):
                    data = {m: v for m, v in output.get("data", {}).items() if m in SAFE_MIMES}
                    if not data:
                        kinds = ", ".join(sorted(output.get("data", {}))) or "nothing"
                        data = {"text/plain": f"[an output of type {kinds[:200]} is not shown]"}
                    output.data = data
                    output.metadata = {}
                kept.append(output)
            cell.outputs = kept
        return nb, resources


def escape_markup(text: str) -> str:
    """A written answer's raw HTML shown as text (Markdown, and LaTeX's <, still read right),
    and its links unable to run anything when clicked (see :func:`neutralise_links`)."""
    return neutralise_links(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


# A Markdown link's target: inline ``[text](target`` / ``![alt](target``, or a reference
# definition ``[label]: target`` (wherever it stands: in a list item or a quote too).
_LINK_TARGET = re.compile(r"(\]\(\s*|\]:[ \t]*)([^\s)]*)")
_SAFE_SCHEMES = ("http", "https", "mailto")
# Browsers drop tabs and newlines anywhere in a URL, so "java\tscript:" is still JavaScript.
_SCRIPT_SCHEME = re.compile(r"(?i)\b((?:j\s*a\s*v\s*a|v\s*b|l\s*i\s*v\s*e)\s*s\s*c\s*r\s*i\s*p\s*t"
                            r"|d\s*a\s*t\s*a|f\s*i\s*l\s*e)(\s*\\?):")


def neutralise_links(text: str) -> str:
    """Links in a student's Markdown may only go to the web or to an e-mail address, its
    images are not loaded, and MathJax's styling commands do nothing.

    A link whose target names any other scheme (``javascript:``, ``data:``, ``vbscript:``,
    ``file:``...) loses its target; and wherever such a scheme is still written, a zero-width
    space before its colon makes it plain text to a browser while the reader sees the same words.
    """
    def target(match):
        url, before = match.group(2), None
        while url != before:  # "&amp;#x61;" is an "a" to some Markdown renderers
            before, url = url, html.unescape(url)
        # Tabs and newlines are dropped by browsers; "<" opens a bracketed target; a backslash
        # escapes the next character in CommonMark ("javascript\:" is "javascript:").
        url = re.sub(r"[\x00-\x20\\<]", "", url)
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", url)
        if scheme and scheme.group(1).lower() not in _SAFE_SCHEMES:
            return match.group(1) + "#link-removed"
        return match.group(0)

    text = _IMAGE.sub(lambda m: f"(image: {m.group(1)})", text).replace("![", "!\\[")
    text = _MATHJAX_HTML.sub(lambda m: "\u2216" + m.group(1), text)
    text = _LINK_TARGET.sub(target, text)
    return _SCRIPT_SCHEME.sub(lambda m: m.group(1) + m.group(2) + "\u200b:", text)


# An image in a written answer is fetched by whoever opens the page (a request to the hub in the
# viewer's name, a tracking pixel): it is shown as its description.
_IMAGE = re.compile(r"!\[([^\]\n]*)\](?:\([^)\n]*\)?|\[[^\]\n]*\])?")
# MathJax commands that style or link the page (a fixed overlay showing a fake score): their
# backslash becomes a set-minus sign, so they read the same and do nothing.
_MATHJAX_HTML = re.compile(r"\\(style|class|cssId|href|unicode|require|html\w*|data|bbox|mmlToken)\b")


class SaveReport(NbGraderPreprocessor):
    """Last of all: the verdicts and every note of the preprocessors before, for the grader."""

    report_dir = Unicode("", help="Folder for a JSON report per notebook").tag(config=True)

    def preprocess(self, nb, resources):
        if self.report_dir:
            report = {"notes": notes_of(resources),
                      "exercises": resources.get("autograder", {}).get("verdicts", {})}
            path = Path(self.report_dir) / f"{resources['nbgrader']['notebook']}.outside.json"
            path.write_text(json.dumps(report, indent=1))
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden test code, and every output line that echoes it, from the feedback."""

    # GenerateFeedback hands this HTML-export option to every preprocessor it runs.
    display_data_priority = List(Unicode()).tag(config=True)

    def preprocess(self, nb, resources):
        hidden_lines = set()
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                if HIDDEN_BEGIN in line:
                    inside = True
                elif HIDDEN_END in line:
                    inside = False
                elif inside and line.strip():
                    hidden_lines.add(line.strip())
        for cell in nb.cells:
            is_hidden = HIDDEN_BEGIN in cell.source or (grade_id(cell) or "").endswith("-hidden")
            if is_hidden:
                kept, inside = [], False
                for line in cell.source.splitlines():
                    if HIDDEN_BEGIN in line:
                        inside = True
                        kept.append("# (the hidden checks ran here; their code is not shown)")
                    elif HIDDEN_END in line:
                        inside = False
                    elif not inside:
                        kept.append(line)
                cell.source = "\n".join(kept)
            if cell.cell_type == "code":
                for output in cell.outputs:
                    if output.output_type == "error" and is_hidden:
                        output.traceback = [f"{output.ename}: {output.evalue}"]
                    _scrub(output, hidden_lines)
        return nb, resources


def _scrub(output, hidden_lines) -> None:
    def clean(text):
        if isinstance(text, list):
            text = "".join(text)
        return "\n".join(line for line in text.split("\n")
                         if not any(h in line for h in hidden_lines))

    if not hidden_lines:
        return
    if output.output_type == "stream":
        output.text = clean(output.text)
    elif output.output_type == "error":
        output.traceback = [clean(line) for line in output.traceback]
        output.evalue = clean(output.evalue)
    elif "data" in output:
        for mime, value in list(output.data.items()):
            if mime.startswith("text/") or mime.endswith("json"):
                if isinstance(value, (str, list)):
                    output.data[mime] = clean(value)


def autograde_preprocessors() -> list:
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)

    return [GuardedExecute, StderrToStdout, OutsideChecks, IgnorePattern,
            ClearMetadataPreprocessor, LimitOutput, SafeOutput, CapOutput, SaveAutoGrades,
            AssignLatePenalties, CheckCellMetadata, SaveReport]


def feedback_preprocessors() -> list:
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    return [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
