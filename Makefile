# Two commands do all the set-up:  `make lab` (open the course)  and  `make test` (run every test).
PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PORT    ?= 8888
PYTEST_ARGS ?=
LAB_ARGS ?=

.PHONY: lab hub test venv torch bench release grade demo bench-grade clean clean-course

# The venv is rebuilt only when the dependency list changes, so both commands are quick after the first run.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Optional: PyTorch (CPU) as a reference for the cross-checks and the conv benchmark.
torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==2.13.0

# jupyter/lab.py is the one place that knows how the course's JupyterLab starts (the browser test uses it too).
lab: $(STAMP)
	$(BIN)/python jupyter/lab.py --port=$(PORT) $(LAB_ARGS)

# The course on a real JupyterHub at http://127.0.0.1:$(HUB_PORT)/ (as root: it creates the accounts,
# the users' venv under /opt/cs231n-hub, the exchange under /srv/cs231n-hub). hub/setup.py says what.
HUB_PORT ?= 8000
HUB_ARGS ?=
hub:
	python3 hub/run.py --port=$(HUB_PORT) $(HUB_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m cs231n_lib.bench

release: $(STAMP)
	$(BIN)/python -m autograder release

grade: $(STAMP)
	$(BIN)/python -m autograder grade

demo: $(STAMP)
	$(BIN)/python -m autograder demo

bench-grade: $(STAMP)
	$(BIN)/python -m autograder bench

# The venv, caches and test artifacts only: never a course (its gradebook, submissions and hand grades).
clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .hypothesis
	find . -path ./autograder/course -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Deleting the course folder autograder/course is a separate step that must be confirmed:
#   make clean-course CONFIRM=yes
clean-course:
	@if [ "$(CONFIRM)" != "yes" ]; then \
	  echo "clean-course deletes autograder/course: the gradebook, every submission, every hand grade."; \
	  echo "Nothing deleted. To delete it anyway:  make clean-course CONFIRM=yes"; \
	  exit 1; \
	fi
	rm -rf autograder/course
