"""The autograder: nbgrader driven honestly (see autograder/cli.py for the commands)."""

import sys

# jsonschema (under nbformat) imports rfc3987_syntax when it is installed, only to check the
# "iri" string format that notebooks never use; that import builds a parser and costs seconds in
# every process that reads a notebook -- every grading subprocess. Marking it absent makes
# jsonschema skip that one format check.
sys.modules.setdefault("rfc3987_syntax", None)
