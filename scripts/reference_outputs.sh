#!/usr/bin/env bash
# Fixed-step reference outputs of the whole chain: the numbers a refactoring must reproduce.
# Usage: bash scripts/reference_outputs.sh OUT_DIR   (then: python scripts/compare_reference.py A B)
set -euo pipefail
OUT=${1:?usage: reference_outputs.sh OUT_DIR}
A=${ASTROLATENT:-astrolatent}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
$A simulate spectra "$OUT/sim" --n 300 --seed 3
$A ingest "$OUT/sim" --store "$OUT/sim.store" --labels "$OUT/sim/labels.csv" --id-column id --workers 1
$A train "$OUT/sim.store" --run "$OUT/run" --max-steps 300 --json > "$OUT/train.json"
$A encode "$OUT/run"
$A analyze "$OUT/run"
$A galaxy simulate "$OUT/gal" --n 600 --seed 1 --no-images
for inputs in optical,ebv morph,ebv optical,morph,ebv; do
  name=${inputs//,/_}
  $A galaxy train "$OUT/gal/catalog.parquet" --target logmass --inputs "$inputs" --run "$OUT/g_$name" \
    --max-epochs 3 --seed 0 --threads 1 --json > "$OUT/g_$name.json"
done
$A galaxy decompose --runs "$OUT/g_optical_ebv,$OUT/g_morph_ebv,$OUT/g_optical_morph_ebv" --json > "$OUT/decompose.json"
$A simulate dag "$OUT/dag" --n 2000 --seed 2
$A discover "$OUT/dag/table.parquet" --vars x0,x1,x2,x3,x4,x5,x6 --method pc --bootstrap 5 --truth "$OUT/dag/dag.json" --json > "$OUT/discover.json"
