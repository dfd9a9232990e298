#!/usr/bin/env bash
# The GPU measurements of the performance work as one script (target: under 10 minutes on one H200):
#   1. training throughput of DeepLab-LargeFOV, fp32/NCHW vs bf16/channels_last, and the relabel step;
#   2. a paper-profile BoxSup epoch on VOC-sized images (train + relabel on the GPU, val + CRF),
#      projected to the 45-epoch run on VOC train_aug;
#   3. the torch dense CRF on the GPU against pydensecrf (label agreement, speed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/gpu_train.py --iters 30
$PY benchmarks/paper_epoch.py --images 400 --val 100 --size 448 --crf-workers 8
# the photos only where ../shared/realdata exists next to the checkout (otherwise: "skipped")
$PY benchmarks/crf.py --torch-device cuda --images 160 --photos 10 --max-pairs 2e10
