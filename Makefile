# Two commands for a fresh clone: `make reports` (the main job) and `make test`.
# Every target creates .venv when missing and installs into it; re-running is a no-op.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml env/requirements-torch.txt | cksum | cut -d' ' -f1)

.PHONY: install test test-fast fuzz reports reports-real data pretrain benchmarks clean-runs lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml env/requirements-torch.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, pinned: the CPU/CUDA wheel this project is tested with (see env/README.md)
	$(BIN)/python -m pip install -q -r env/requirements-torch.txt
	$(BIN)/python -m pip install -q -e '.[crf,notebooks,dev]'
	# a Jupyter kernel named "boxsup" inside the venv, for papermill -k boxsup and JupyterLab
	$(BIN)/python -m ipykernel install --prefix $(abspath $(VENV)) --name boxsup --display-name "boxsup" >/dev/null
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# the full loader fuzz suite (tests/test_fuzz.py): mutated VOC XML, mask PNGs and COCO json
fuzz: install
	BOXSUP_FUZZ_FULL=1 $(BIN)/python -m pytest -q -s -m fuzz tests/test_fuzz.py

data: install
	$(BIN)/boxsup data

# the toy network's body pre-trained on the toy ImageNet (a run that needs it also makes it first)
pretrain: install
	$(BIN)/boxsup pretrain

reports: install
	$(BIN)/boxsup report $(if $(SEEDS),--seeds $(SEEDS))

# Table 2 on real photos read from ../shared/realdata, from the toy profile's pre-trained body and from
# random weights, with BoxSup also started from the GrabCut network (--grabcut-start):
# reports/table2-<folder>[-scratch].html, listed in the index and committed. They are
# rendered with --no-photos: the photos' terms do not allow copying them (or masks traced from them)
# into git, so the pages hold numbers and curves only. Without the folder the target says so and
# leaves the committed pages as they are (each says what it was built from).
REALDATA ?= ../shared/realdata/weizmann_horse
reports-real: install
	@if [ -d "$(REALDATA)" ]; then \
	  $(BIN)/boxsup report --only table2 --dataset $(REALDATA) --no-photos --grabcut-start $(if $(SEEDS),--seeds $(SEEDS)) && \
	  $(BIN)/boxsup report --only table2 --dataset $(REALDATA) --no-photos --grabcut-start --scratch $(if $(SEEDS),--seeds $(SEEDS)); \
	else echo "skipped: $(REALDATA) not found; the committed reports/table2-$(notdir $(REALDATA))*.html stay as they are"; fi

benchmarks: install
	$(BIN)/python benchmarks/proposals.py
	$(BIN)/python benchmarks/relabel.py
	$(BIN)/python benchmarks/crf.py

clean-runs:
	rm -rf runs
