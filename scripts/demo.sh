#!/usr/bin/env bash
# The demo on an embedded default: simulate spectra with known factors, ingest them into a
# store with their labels, and show what the store holds.
set -euo pipefail
out=${1:-demo-output}
al=.venv/bin/astrolatent
rm -rf "$out"
$al simulate spectra "$out/spectra" --n 600 --n-objects 500 --seed 1
$al ingest "$out/spectra" --store "$out/store" --labels "$out/spectra/labels.csv" --id-column id --workers 2
$al info "$out/store"
echo "demo store: $out/store"
