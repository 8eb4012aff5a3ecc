#!/usr/bin/env bash
# make demo: generate a short synthetic scene and run the tracking stack on it.
# Usage: scripts/demo.sh OUT   (called by `make demo` after set-up, with scripts/env.sh sourced)
set -euo pipefail
OUT="${1:-out/demo}"
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== 1/2  synthetic scene: 3 videos, 40 frames, 320x240 -> $OUT/synth"
vsis synth "$OUT/synth" --videos 3 --seed 11 --frames 40

echo "== 2/2  tracking benchmark on the generator's instances (ids shuffled per frame, 10% frames dropped)"
echo "   (the perception model is not shipped yet, so the demo tracks ground-truth masks)"
vsis bench-track --videos 3 --seed 11 --frames 40
