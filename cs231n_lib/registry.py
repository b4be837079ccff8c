"""Which implementation the library calls: its own, or the one a student wrote in a notebook.

A graded exercise (``relu_forward``, ``adam``, ``batchnorm_forward``...) is written twice over a
course: the student writes it in a notebook, and the library holds a version its models,
``Solver`` and widgets call. In the student's edition of the library (built by the autograder's
release) the version of every exercise not yet due is a stub that raises ``NotImplementedError``.
So that a notebook's experiments run on the student's own code, the notebook hands its
functions to the library:

    from cs231n_lib import use
    use(batchnorm_forward, batchnorm_backward_alt)

From then on every part of the library that calls ``layers.batchnorm_forward`` calls the
student's function. That works because the library looks exercises up at call time, as module
attributes (``layers.relu_forward(...)``, ``getattr(optim, rule)``), never through a reference
bound at import.

``@exercise("01_activations")`` marks the library's version of an exercise and names the
notebook where the student writes it. The marker does nothing at run time but record that
name; the release reads it to decide which bodies to replace by stubs.
"""

import ast
import importlib
import inspect
import sys
import textwrap

# The modules that hold exercises; use() imports them all, so a function is found wherever it lives.
EXERCISE_MODULES = ("gradcheck", "layers", "preprocess", "init", "stats", "optim", "conv.naive",
                    "conv", "models.fc_net")

_originals = {}  # name -> the library's own function, kept so that reset() can put it back


def exercise(notebook):
    """Mark a library function as the reference of an exercise of ``notebook``."""

    def mark(function):
        function.__exercise__ = notebook
        return function

    return mark


def _library_modules():
    for name in EXERCISE_MODULES:
        importlib.import_module(f"cs231n_lib.{name}")
    return [m for n, m in list(sys.modules.items())
            if m is not None and (n == "cs231n_lib" or n.startswith("cs231n_lib."))]


def exercises():
    """{name: notebook} of every exercise the library marks."""
    found = {}
    for module in _library_modules():
        for name, value in vars(module).items():
            notebook = getattr(_originals.get(name, value), "__exercise__", None)
            if callable(value) and notebook is not None:
                found[name] = notebook
    return found


def _is_blank(function):
    """True for a function the student has not written: one whose body, at its top level, still
    holds the notebook's placeholder ``raise NotImplementedError()`` (the lines the notebook gives
    around it may be there too)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):  # no source to read: compare the bytecode
        def placeholder():
            raise NotImplementedError()

        code = getattr(function, "__code__", None)
        return (code is not None and code.co_code == placeholder.__code__.co_code
                and code.co_names == placeholder.__code__.co_names)
    body = tree.body[0].body if tree.body and hasattr(tree.body[0], "body") else []
    return any(isinstance(statement, ast.Raise) and isinstance(statement.exc, ast.Call)
               and getattr(statement.exc.func, "id", None) == "NotImplementedError"
               and not statement.exc.args for statement in body)


def _replace(name, new):
    """Point every library module's attribute ``name`` that holds the library's version (or a
    function registered before) at ``new``: ``conv`` re-exports ``conv.naive``'s functions."""
    original = _originals[name]
    for module in _library_modules():
        current = vars(module).get(name)
        if current is original or getattr(current, "__replaces__", None) is original:
            setattr(module, name, new)


def use(*functions):
    """Make the library call these functions in place of its own versions of the same names.

    Each function must be named like an exercise of the library (``relu_forward``, ``adam``...).
    A function the student has not written yet (its body still the notebook's
    ``raise NotImplementedError()``) is refused here, with the name of the notebook to write it
    in, rather than failing later from deep inside a model; the others are handed over all the
    same.
    """
    known = exercises()
    for function in functions:
        name = getattr(function, "__name__", None)
        if name not in known:
            raise ValueError(f"use: the library has no exercise named {name!r}; "
                             f"its exercises are {sorted(known)}")
    # The written ones are handed over even when others are not written yet.
    blank = [f.__name__ for f in functions if _is_blank(f)]
    for function in functions:
        name = function.__name__
        if name in blank:
            continue
        if name not in _originals:
            _originals[name] = next(getattr(m, name) for m in _library_modules()
                                    if getattr(getattr(m, name, None), "__exercise__", None))
        if function is not _originals[name]:
            function.__replaces__ = _originals[name]
        _replace(name, function)
    if blank:
        raise NotImplementedError("; ".join(f"{name} is yours to write in notebook {known[name]}"
                                            for name in blank))


def reset():
    """Give the library its own versions back (undo every use())."""
    for name, original in list(_originals.items()):
        _replace(name, original)
    _originals.clear()
