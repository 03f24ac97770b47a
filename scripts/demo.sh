#!/usr/bin/env bash
# The demo on an embedded default, end to end on a laptop CPU (about 8 minutes on 2 quiet cores):
# examples/pipeline.yaml simulates stellar spectra with known factors, ingests them with their
# labels into a store, trains the VAE (12,000 steps, capped at 20 minutes), encodes, measures what each latent
# dimension knows and writes the HTML report. It ends with the report path and a summary.
set -euo pipefail
out=${1:-demo-output}
# a rerun into the same folder redoes only the stages whose inputs or settings changed
.venv/bin/astrolatent run examples/pipeline.yaml --out "$out"
echo "truth of every simulated factor: $out/spectra/truth.csv"
