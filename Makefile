# The two commands a new user needs (see README): `make demo` and `make test`.
# Both set everything up themselves on a fresh machine (scripts/setup.sh).
.PHONY: demo test lint bench setup

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

test: setup
	@.venv/bin/ruff check .
	@.venv/bin/python -m pytest

lint: setup
	@.venv/bin/ruff check .

bench: setup
	@.venv/bin/python -m tests.bench
