# Two commands on a fresh machine: `make reproduce` (the main job) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BACKBONE := $(VENV)/bin/backbone

SYNTH_DIR ?= data/synthetic
SEED      ?= 0
DATA      ?= synthetic
LFW_ROOT  ?= ../shared/data/lfw
LFW_TEST_PAIRS ?= $(LFW_ROOT)/pairsDevTest.txt

# Kernels are this .venv's Python, even where the user has another "python3" kernel installed:
# setup installs .venv's kernel spec, and JUPYTER_PATH puts it first for every command below.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter

.PHONY: setup browser lint test test-fast test-portable screenshot reproduce data data-files grid lfw stress losses twins twins-data twins-gpu \
	gpu-check notebook clean pretrained \
	serve-model container-deps container-base container container-smoke

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned, so no later requirement can pull another build.
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e '.[dev]'
	# facenet-pytorch 2.6.0 declares torch<2.3 in its metadata, which would downgrade torch;
	# it works with torch 2.14, so it goes in without its declared dependencies (its real
	# needs, numpy/pillow/requests/torchvision/tqdm, are in pyproject.toml).
	$(PY) -m pip install --no-deps facenet-pytorch==2.6.0
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (backbone)"
	touch $(STAMP)

# The pretrained models' recipes (backbone/evaluation/pretrained.json: network, alignment, and the
# threshold chosen on LFW's validation pairs) from the LFW grid's runs of them (`make lfw`).
pretrained: setup
	$(PY) -m backbone.evaluation.pretrained

# Debian's Chromium for the explorer's browser test (Playwright's own download cannot work
# offline). Installed when missing and this user may; otherwise that test skips (CI sets
# BACKBONE_REQUIRE_BROWSER=1, which makes a missing browser a failure instead).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; \
	elif [ "$$(id -u)" = 0 ]; then export DEBIAN_FRONTEND=noninteractive; apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	elif sudo -n true 2>/dev/null; then sudo apt-get install -y chromium || { sudo apt-get update && sudo apt-get install -y chromium; }; \
	else echo "make browser: $(CHROMIUM) is missing and apt-get needs root: the explorer's browser test will skip (apt-get install chromium)"; fi

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup browser lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

# The suite under other CPU kernels and thread counts than this machine's defaults: AVX2 kernels,
# plain ones (no vector extension beyond SSE4.1), and one thread (a tolerance that holds only on the
# machine that wrote it is a red CI for the next user). PyTorch's own kernels follow
# ATEN_CPU_CAPABILITY, oneDNN's (the convolutions) ONEDNN_MAX_CPU_ISA. About 3 x `make test`.
test-portable: setup browser
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 $(PY) -m pytest -q
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(PY) -m pytest -q
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

# The screenshot in docs/evaluation.md: the browser tests, the explorer on a trained run (it needs RUN/best.ckpt).
RUN ?= experiments/runs/triplet-cbam-s0
screenshot: setup browser
	EXPLORER_RUN=$(RUN) EXPLORER_SCREENSHOTS=docs/screenshots BACKBONE_REQUIRE_BROWSER=1 $(PY) -m pytest tests/test_notebooks_browser.py -q

# JupyterLab on the notebooks, served from the project root with the .venv kernel. Relative paths
# in the notebooks mean the project root wherever the kernel starts; a notebook whose inputs do not
# exist yet says at its first cell what to run (`make data`, `make reproduce`, ...).
notebook: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks $(JUPYTER_ARGS)

# The main job: the synthetic twins data, then the default grid re-trained from scratch into
# $(REPRODUCED) (its own runs, tables and figures; the committed ones in experiments/ stay as they
# are), and its numbers compared with the committed ones (written to $(REPRODUCED)/comparison.md).
# An interrupted reproduction resumes; `rm -rf $(REPRODUCED)` starts it over.
# `make reproduce DATA=lfw [LFW_ROOT=...] [LFW_TEST_PAIRS=.../pairs.txt]` runs the LFW grid instead.
REPRODUCED ?= experiments/reproduced
ifeq ($(DATA),lfw)
reproduce: setup lfw
else
reproduce: setup data
	$(BACKBONE) experiments run --runs $(REPRODUCED)/runs --out $(REPRODUCED)
	$(BACKBONE) experiments compare experiments $(REPRODUCED)
endif

# The committed results: the default grid's runs in experiments/runs (complete ones are kept),
# its tables and figures in experiments/, and the README's table.
grid: setup
	$(BACKBONE) experiments run
	$(PY) -m backbone.experiments.readme README.md experiments/results.md

# The losses compared on the synthetic twins (experiments/losses; ~15 min).
losses: setup data
	$(BACKBONE) experiments run --grid experiments/losses/grid.yaml
	$(PY) -m backbone.experiments.readme README.md experiments/losses/results.md losses-results

# The twins grid (experiments/twins): trained on a synthetic twins set of its own, 2,000 twin pairs
# that are not in the default set (generator seed 1), scored on the default set's pairs; ~35 min.
TWINS_TRAIN ?= data/synthetic-train
twins-data: data
	$(BACKBONE) data synth --out $(TWINS_TRAIN) --seed 1 --twin-pairs 2000 --singletons 0 --images 8

# The twins question at a GPU's budget (experiments/twins-gpu): the default grid's twelve trainings at 20x
# its images a run, TWINS_GPU_JOBS at a time on one GPU (minutes on an H200; hours on a small CPU).
TWINS_GPU_JOBS ?= 4
twins-gpu: setup data
	$(BACKBONE) experiments run --grid experiments/twins-gpu/grid.yaml --jobs $(TWINS_GPU_JOBS)

# The workbook on a CUDA GPU: the gpu-marked and non-slow tests, one default-grid training, an
# evaluation, the throughput benchmark; one report (GPU_CHECK_OUT/REPORT.md). It installs nothing and
# runs with the machine's own Python and PyTorch (GPU_PYTHON); WHEELS=DIR first installs the packages
# that Python lacks from a folder of wheels (no index) into GPU_CHECK_OUT/site. Without a GPU it says so
# and runs the CPU half.
GPU_PYTHON    ?= python3
GPU_CHECK_OUT ?= build/gpu-check
WHEELS        ?=
gpu-check:
	mkdir -p $(GPU_CHECK_OUT)
	$(if $(WHEELS),$(GPU_PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $(GPU_CHECK_OUT)/site $(WHEELS)/*.whl)
	PYTHONPATH=$(CURDIR)$(if $(WHEELS),:$(abspath $(GPU_CHECK_OUT))/site) $(GPU_PYTHON) benchmarks/gpu_check.py --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

twins: setup twins-data
	$(BACKBONE) experiments run --grid experiments/twins/grid.yaml
	$(PY) -m backbone.experiments.readme README.md experiments/twins/results.md twins-results

lfw: setup
	$(BACKBONE) data align $(LFW_ROOT)
	$(BACKBONE) data pairs $(LFW_ROOT) --people $(LFW_ROOT)/peopleDevTrain.txt --split train --split-fractions train=0.85,val=0.15 --n-pairs 6000 --seed $(SEED) --out files/lfw_train_pairs.tsv --people-out files/lfw_train_people.txt
	$(BACKBONE) data pairs $(LFW_ROOT) --people $(LFW_ROOT)/peopleDevTrain.txt --split val --split-fractions train=0.85,val=0.15 --n-pairs 1000 --seed $(SEED) --out files/lfw_val_pairs.tsv
	$(BACKBONE) experiments run --grid experiments/lfw/grid.yaml --param 'overrides=["data.root=$(LFW_ROOT)", "data.test_pairs=$(LFW_TEST_PAIRS)"]' \
		--param data_root=$(LFW_ROOT) --param test_pairs=$(LFW_TEST_PAIRS)

# LFW's DevTest pairs under changes of light and quality (backbone.data.stress; the images go to
# data/lfw-stress): dlib's own pipeline, the pretrained port (the default; flip-averaged with the dark
# retry; as it was before, flip-averaged without it)
# and, when trained, the distilled model. About 90 minutes on 2 CPU cores the first time; a re-run reads its caches.
# STRESS_EVERY=2 scores every 2nd pair (about half the time).
STRESS_EVERY ?= 1
stress: setup
	$(BACKBONE) experiments stress --lfw $(LFW_ROOT) --test-pairs $(LFW_TEST_PAIRS) --every $(STRESS_EVERY)
	$(PY) -m backbone.experiments.readme README.md experiments/lfw/results.md lfw-results

data: setup data-files

# The data commands alone, with any `backbone` (make gpu-check runs them with the machine's own Python).
data-files:
	$(BACKBONE) data synth --out $(SYNTH_DIR) --seed $(SEED)
	$(BACKBONE) data validate $(SYNTH_DIR)
	$(BACKBONE) data analyze $(SYNTH_DIR) --json $(SYNTH_DIR)/analysis.json
	$(BACKBONE) data pairs $(SYNTH_DIR) --split train --n-pairs 6000 --seed $(SEED) --out files/synthetic_train_pairs.tsv --triplets files/synthetic_train_triplets.tsv
	$(BACKBONE) data pairs $(SYNTH_DIR) --split val --n-pairs 1000 --seed $(SEED) --out files/synthetic_val_pairs.tsv
	$(BACKBONE) data pairs $(SYNTH_DIR) --split test --n-pairs 2000 --seed $(SEED) --out files/synthetic_test_pairs.tsv
	$(BACKBONE) data validate $(SYNTH_DIR) --pairs files/synthetic_train_pairs.tsv --pairs files/synthetic_val_pairs.tsv --pairs files/synthetic_test_pairs.tsv
	# The synthetic faces are already aligned: cache centre crops at the default model size.
	$(BACKBONE) data align $(SYNTH_DIR) --detector none --size 112

# A trained model behind HTTP (docs/serving.md). SERVE_MODEL is exported to ONNX beside
# build/container/; `make container` builds the service's image (container/Dockerfile: ONNX
# Runtime, no PyTorch, a non-root user), `make container-smoke` runs it and calls it.
# No image registry is reachable here: `make container-base` makes the Debian base image with
# debootstrap (as root) and podman imports it. With a registry, CONTAINER_BASE can be
# docker.io/library/python:3.11-slim-bookworm, and CONTAINER=docker should do (neither tried here).
SERVE_MODEL     ?= experiments/twins/runs/marks-s0/best.ckpt
CONTAINER       ?= podman
CONTAINER_IMAGE ?= localhost/backbone-serve:latest
CONTAINER_BASE  ?= localhost/debian-bookworm-python:local
CA_BUNDLE       ?= /etc/ssl/certs/ca-certificates.crt
comma := ,
# a TLS-intercepting proxy's CA for pip in the build (a build secret: not kept in the image)
CA_SECRET       := $(if $(wildcard $(CA_BUNDLE)),--secret id=cacert$(comma)src=$(CA_BUNDLE))
SMOKE_PAIR      ?= data/synthetic/solo000/solo000_0001.png data/synthetic/solo000/solo000_0002.png
ifeq ($(CONTAINER),podman)
# This machine's quirks: no CAP_SYS_RESOURCE (podman's default rlimits are refused), hybrid
# cgroups (crun refuses them; runc works). Harmless elsewhere.
export CONTAINERS_CONF := $(CURDIR)/build/containers.conf
endif

serve-model: setup
	@test -f $(SERVE_MODEL) || { echo "$(SERVE_MODEL) is missing: \`make twins\` trains it, or pass SERVE_MODEL=CHECKPOINT"; exit 1; }
	$(BACKBONE) export --checkpoint $(SERVE_MODEL) --format onnx --out build/container/model.onnx

container-deps:
	@command -v $(CONTAINER) >/dev/null && command -v debootstrap >/dev/null && command -v iptables >/dev/null || \
	DEBIAN_FRONTEND=noninteractive apt-get install -y podman debootstrap uidmap slirp4netns passt fuse-overlayfs runc netavark aardvark-dns iptables

build/containers.conf:
	mkdir -p build
	nofile=$$(ulimit -Hn); [ "$$nofile" = unlimited ] && nofile=1048576; \
	nproc=$$(bash -c 'ulimit -Hu'); { [ "$$nproc" = unlimited ] || [ $$nproc -gt 32768 ]; } && nproc=32768; \
	printf '%s\n' '[containers]' "default_ulimits = [\"nofile=$$nofile:$$nofile\", \"nproc=$$nproc:$$nproc\"]" \
	  '[network]' 'network_backend = "netavark"' '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' > $@

container-base: container-deps build/containers.conf
	IMAGE=$(CONTAINER_BASE) ROOTFS=$(CURDIR)/build/base-rootfs container/mkbase.sh

container: serve-model $(if $(filter podman,$(CONTAINER)),build/containers.conf)
	$(CONTAINER) build $(if $(filter podman,$(CONTAINER)),--pull=never) --build-arg BASE=$(CONTAINER_BASE) \
	  $(CA_SECRET) -f container/Dockerfile -t $(CONTAINER_IMAGE) .
	$(CONTAINER) image ls $(CONTAINER_IMAGE)

container-smoke: container
	CONTAINER=$(CONTAINER) IMAGE=$(CONTAINER_IMAGE) container/smoke.sh $(SMOKE_PAIR)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
