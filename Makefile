# The two commands a new user needs (see README): `make demo` and `make test`.
# Both set everything up themselves on a fresh machine (scripts/setup.sh).
.PHONY: demo test lint bench setup typing-tree

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

# mypy reads the folders as the sas_router.* packages they are installed as.
typing-tree:
	@mkdir -p build/typing/sas_router
	@for package in engine supervision simulator; do ln -sfn ../../../$$package build/typing/sas_router/$$package; done

test: setup typing-tree
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports --no-cache
	@.venv/bin/python -m pytest

lint: setup typing-tree
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports --no-cache

bench: setup
	@.venv/bin/python -m tests.bench
