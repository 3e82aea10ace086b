# Set-up and entry points. `make demo` and `make test` each create .venv and install pinned
# dependencies on first use, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= runs/demo
SAMPLE := examples/sample

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev,all]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/semmatch train --train $(SAMPLE)/train.tsv --valid $(SAMPLE)/valid.tsv \
		--output-dir $(DEMO_DIR) --epochs 10 --batch-size 64 --no-progress
	$(BIN)/semmatch evaluate --model $(DEMO_DIR)/best --input $(SAMPLE)/valid.tsv --output-dir $(DEMO_DIR)/evaluation
	$(BIN)/semmatch predict --model $(DEMO_DIR)/best --input $(SAMPLE)/test.tsv \
		--output $(DEMO_DIR)/result.txt --zip $(DEMO_DIR)/submission.zip
	@echo "demo finished: see $(DEMO_DIR)/ (metrics.json, plots, result.txt, submission.zip)"

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
