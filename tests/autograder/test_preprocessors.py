"""The preprocessors that make a graded notebook safe to open: markup and size."""

import html as html_lib
import json
import re

import pytest

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.preprocessors import CapOutput, SafeOutput


def _solution(cell):
    cell.metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "q", "points": 1,
                                 "locked": False, "schema_version": 3, "task": False}
    return cell


def run(preprocessor, cells):
    nb = new_notebook(cells=cells)
    out, _ = preprocessor.preprocess(nb, {})
    return out


def test_student_markup_never_survives_in_outputs():
    cell = new_code_cell("x")
    cell.outputs = [
        new_output("display_data", data={"text/html": "<script>steal()</script>",
                                         "application/javascript": "steal()",
                                         "image/svg+xml": "<svg onload='steal()'/>",
                                         "text/markdown": "<img src=x onerror=steal()>",
                                         "text/plain": "<Figure>"}),
        new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
        new_output("execute_result", data={"text/html": "<b>bold</b>"}, execution_count=1),
    ]
    outputs = run(SafeOutput(), [cell]).cells[0].outputs
    assert outputs[0].data == {"text/plain": "<Figure>"}
    assert outputs[1].data == {"image/png": "iVBORw0KGgo="}
    assert list(outputs[2].data) == ["text/plain"] and "text/html" in outputs[2].data["text/plain"]
    assert "steal" not in json.dumps([dict(o) for o in outputs])


def test_a_written_answer_s_html_is_shown_as_text():
    answer = _solution(new_markdown_cell('See <img src=z onerror="steal()"> and $a < b$ & more'))
    release_text = new_markdown_cell("<b>instructions</b>")
    nb = run(SafeOutput(), [answer, release_text])
    assert nb.cells[0].source == 'See &lt;img src=z onerror="steal()"&gt; and $a &lt; b$ &amp; more'
    assert nb.cells[1].source == "<b>instructions</b>"  # the course's own text is left alone


@pytest.mark.parametrize("link", [
    "[click](javascript:steal())", "[click]( JavaScript:steal() )", "[c](java\tscript:steal())",
    "[click][r]\n\n[r]: javascript:steal()", "![x](data:text/html;base64,PHNjcmlwdD4=)",
    "[click](vbscript:steal)", "[click](<javascript:steal()>)", "[c](jav&#x61;script:steal())",
    "[see](javascript\\:steal())", "- [r]: data\\:text/html;base64,PHNjcmlwdD4=\n\n[plot][r]",
    "> [r]: javascript:steal()\n\n[x][r]"])
def test_a_written_answers_links_cannot_run_script(link):
    from nbconvert.filters.markdown import markdown2html

    html = markdown2html(run(SafeOutput(), [_solution(new_markdown_cell(link))]).cells[0].source)
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', html)
    for url in hrefs:
        scheme = re.match(r"([a-z][a-z0-9+.-]*):", html_lib.unescape(url).replace("\t", "").lower())
        assert scheme is None or scheme.group(1) in ("http", "https", "mailto"), (link, html)


def test_a_written_answers_web_links_still_work():
    text = "[paper](https://arxiv.org/abs/1502.03167), [notes](#batchnorm) and the data: shown"
    source = run(SafeOutput(), [_solution(new_markdown_cell(text))]).cells[0].source
    assert "](https://arxiv.org/abs/1502.03167)" in source and "](#batchnorm)" in source


def test_attachments_are_dropped():
    cell = _solution(new_markdown_cell("![x](attachment:x.svg)"))
    cell["attachments"] = {"x.svg": {"image/svg+xml": "<svg onload='steal()'/>"}}
    assert "attachments" not in run(SafeOutput(), [cell]).cells[0]


def test_json_outputs_of_any_shape_are_capped_without_crashing():
    cell = new_code_cell("x")
    cell.outputs = [new_output("display_data", data={"application/json": [[1]], "text/plain": ["a", "b"]}),
                    new_output("stream", name="stdout", text="y" * 10_000_000)]
    nb = run(CapOutput(max_text=1000), [cell])
    first, second = nb.cells[0].outputs
    assert first.data["text/plain"] == "ab"
    assert len(second.text) < 2000 and "more characters cut" in second.text


def test_a_notebook_s_outputs_stay_under_the_total():
    cells = []
    for _ in range(30):
        cell = new_code_cell("print('x')")
        cell.outputs = [new_output("stream", name="stdout", text="z" * 19_000)]
        cells.append(cell)
    scored = new_code_cell("check()")
    scored.outputs = [new_output("execute_result", data={"text/plain": "1.0"}, execution_count=1)]
    nb = run(CapOutput(max_total=200_000), cells + [scored])
    assert len(nbformat.writes(nb)) < 300_000
    assert nb.cells[-1].outputs[0].output_type == "execute_result"  # the grader's verdict is kept
    assert "over the 200 kB limit" in nb.cells[-2].outputs[0].text


def test_whatever_a_hostile_kernel_sent_becomes_a_valid_notebook():
    from autograder.preprocessors import well_formed

    cell = new_code_cell("x")
    cell.execution_count = "<img src=x onerror=steal()>"
    cell.outputs = [
        {"output_type": "stream", "name": "\x1b[2J", "text": ["a", 1, "b"]},
        {"output_type": "execute_result", "execution_count": "7", "metadata": {"x": object()},
         "data": {"text/plain": ["4", "2"], "application/json": {"a": 1}, 5: "x", "text/html": 3}},
        {"output_type": "error", "ename": 1, "evalue": None, "traceback": ["ok", 2]},
        {"output_type": "clear_all_the_things"},
        "not even a dict",
    ]
    well_formed(cell)
    nbformat.validate(new_notebook(cells=[cell]))
    assert cell.execution_count is None
    assert [o.output_type for o in cell.outputs] == ["stream", "execute_result", "error", "stream", "stream"]
    assert cell.outputs[0].text == "ab" and cell.outputs[1].data["text/plain"] == "42"


@pytest.mark.parametrize("text", ["![pixel](http://127.0.0.1:8000/hub/logout)", "![p][r]\n\n[r]: http://evil.example/p.png",
                                  "![p](<http://evil.example/p.png>)", "!\\[p](http://evil.example/p.png)"])
def test_a_written_answers_images_are_never_fetched(text):
    from nbconvert.filters.markdown import markdown2html

    html = markdown2html(run(SafeOutput(), [_solution(new_markdown_cell(text))]).cells[0].source)
    assert "<img" not in html, html


def test_mathjax_commands_that_style_the_page_do_nothing():
    text = r"$\style{position:fixed;top:0}{\text{Score: 26 / 26}}$ and $\href{http://x}{y}$ but $\frac{a}{b}$"
    source = run(SafeOutput(), [_solution(new_markdown_cell(text))]).cells[0].source
    assert r"\style" not in source and r"\href" not in source and r"\frac{a}{b}" in source
