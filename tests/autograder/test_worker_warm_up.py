"""What the warm server prepares once for every worker (autograder/worker.py, warm_up): nbgrader's
cell-metadata validation with validators built once decides exactly as jsonschema.validate does."""

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import jsonschema
    from nbformat.v4 import new_code_cell, new_notebook
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError
    from nbgrader.nbgraderformat import common

    def meta(**changes):
        good = {"grade": True, "grade_id": "f-visible", "locked": True, "points": 1.0,
                "schema_version": 3, "solution": False, "task": False}
        return {**good, **changes}

    CASES = {"good": meta(), "text points": meta(points="one"), "no grade id": meta(grade_id=None),
             "grade not a bool": meta(grade="yes")}

    def verdicts():
        found = {}
        for name, nbgrader_meta in CASES.items():
            nb = new_notebook(cells=[new_code_cell("pass", metadata={"nbgrader": nbgrader_meta})])
            try:
                MetadataValidator().validate_nb(nb)
                found[name] = "valid"
            except (ValidationError, jsonschema.ValidationError) as exc:
                found[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return found

    plain = verdicts()
    import autograder.worker
    autograder.worker.validate_metadata_with_built_validators()
    assert common.jsonschema is not jsonschema, "the validation was not replaced"
    built = verdicts()
    assert built == plain, (built, plain)
    assert plain["good"] == "valid" and sum(v != "valid" for v in plain.values()) == 3, plain
    print("same")
""")


def test_metadata_validation_with_built_validators_decides_as_jsonschema_validate():
    # In a process of its own: the replacement stays for the rest of a process's life.
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "same"


def test_the_warm_up_gradebook_starts_no_alembic_subprocess(monkeypatch):
    import nbgrader.api

    from autograder.worker import throwaway_gradebook

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    monkeypatch.setattr(nbgrader.api.sp, "check_output", no_subprocess)
    with throwaway_gradebook() as gradebook:
        gradebook.add_student("s1")
        assert [s.id for s in gradebook.students] == ["s1"]
    # Only the throw-away database is spared the version query: nbgrader's own stays as it was.
    assert nbgrader.api.get_alembic_version.__module__ == "nbgrader.api"


def test_the_workers_scratch_gradebook_shares_one_engine_and_skips_disk_flushes(tmp_path):
    # In a process of its own: the listener stays for the rest of a process's life.
    probe = textwrap.dedent(f"""
        from unittest import mock
        import nbgrader.api
        from nbgrader.api import Gradebook
        from sqlalchemy import text
        import autograder.worker
        autograder.worker.quick_scratch_gradebook()
        mock.patch.object(nbgrader.api, "get_alembic_version", return_value="test").start()
        with Gradebook("sqlite:///{tmp_path}/gradebook.db") as gb:
            gb.add_student("s1")
            print(gb.db.execute(text("PRAGMA synchronous")).scalar(),
                  gb.db.execute(text("PRAGMA journal_mode")).scalar())
            engine = gb.engine
        with Gradebook("sqlite:///{tmp_path}/gradebook.db") as gb:  # what was written, kept
            print([s.id for s in gb.students], gb.engine is engine)
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["0 memory", "['s1'] True"]


def test_the_warm_up_builds_the_relaxed_notebook_validator_nbconvert_asks_for():
    probe = textwrap.dedent("""
        import nbformat.validator as validator
        import autograder.worker
        autograder.worker.warm_up()
        print(sorted(key[1:] for key in validator.validators))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[(4, 5, False), (4, 5, True)]"
