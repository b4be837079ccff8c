"""The code that runs inside the sandbox, next to a student's code.

Two files live here and nothing else: :mod:`wire`, the protocol both sides speak, and
:mod:`child`, the process that runs the student's cells and answers the grader's requests. Inside
the sandbox this folder is mounted read-only and the ``autograder`` package is *not* importable,
so ``child.py`` runs as a script and imports ``wire`` from its own folder; the grader imports the
very same file as ``autograder.boxed.wire``. Both files use only the standard library and NumPy.

The split of trust is the point: the child only runs the student's functions on the grader's
inputs and hands back what they computed, as plain data. Every check, every reference output and
every comparison runs in the grader (:mod:`autograder.checks`).
"""
