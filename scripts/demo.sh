#!/usr/bin/env bash
# The demo on an embedded default, end to end on a laptop CPU (about 10 minutes on 2 cores):
# simulate stellar spectra with known factors, ingest them with their labels into a store,
# train the VAE, encode, and measure what each latent dimension knows.
set -euo pipefail
out=${1:-demo-output}
minutes=${DEMO_TRAIN_MINUTES:-4}
al=.venv/bin/astrolatent
rm -rf "$out"
$al simulate spectra "$out/spectra" --n 1500 --n-objects 1200 --seed 1
$al ingest "$out/spectra" --store "$out/store" --labels "$out/spectra/labels.csv" --id-column id --workers 2
$al info "$out/store"
$al train "$out/store" --run "$out/run" --max-minutes "$minutes"
$al encode "$out/run"
$al analyze "$out/run" --n-permutations 50 --n-bootstrap 10 --max-samples 1500
echo
echo "demo finished: analysis in $out/run/analysis (summary.json, figures); truth of every factor in $out/spectra/truth.csv"
