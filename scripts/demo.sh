#!/usr/bin/env bash
# make demo: (1) a synthetic scene -> rosbag2 -> the real three-node ROS 2 graph on the
# shipped synthetic-shapes model -> metrics, latency table and overlay videos; (2) when
# ../shared/data/davis2016 is present, the shipped default model ('real') on real frames.
# Usage: scripts/demo.sh OUT   (make demo calls it after set-up, with scripts/env.sh sourced)
set -euo pipefail
OUT="${1:-out/demo}"
MODEL="${VSIS_DEMO_MODEL:-synth}"
# The demo's graph is its own: discovery on this machine only, in a domain of its own
# (VSIS_DEMO_DOMAIN_ID), whatever the calling shell uses.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${VSIS_DEMO_DOMAIN_ID:-42}"
unset ROS_LOCALHOST_ONLY
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== 1/5  synthetic scene: 2 videos, 40 frames, 320x240 -> $OUT/synth"
vsis synth "$OUT/synth" --videos 2 --seed 2026 --frames 40

echo "== 2/5  rosbag2 (mcap) with images and ground truth -> $OUT/bags"
vsis bag make "$OUT/synth" "$OUT/bags"

echo "== 3/5  replay through perception, tracking and semantic nodes (3 processes, model '$MODEL')"
vsis replay "$OUT/bags" --out "$OUT/replay" --model "$MODEL" --graph processes

echo "== 4/5  metrics on the graph's outputs"
PRED="$OUT/replay/instances"
GT="$OUT/replay/gt"
vsis eval --pred "$PRED" --gt "$GT" --protocol davis2016 --out "$OUT/davis2016.json"
vsis eval --pred "$PRED" --gt "$GT" --protocol hota --out "$OUT/hota.json"
vsis eval --pred "$PRED" --gt "$GT" --protocol sesiv --out "$OUT/sesiv.json" \
  --pred-semantics "$OUT/replay/semantics" --gt-semantics "$OUT/replay/gt_semantics"
vsis eval --pred "$PRED" --gt "$GT" --protocol ytvis --out "$OUT/ytvis.json" \
  --pred-semantics "$OUT/replay/semantics" --gt-semantics "$OUT/replay/gt_semantics"

echo
echo "overlay videos (masks, track ids, unified labels): $(ls "$OUT"/replay/overlay/*.mp4 | tr '\n' ' ')"
echo "reports: $OUT/{davis2016,hota,sesiv,ytvis}.json, latency: $OUT/replay/latency.json, recorded outputs: $OUT/replay/record"

DAVIS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/data/davis2016"
if [ -d "$DAVIS/JPEGImages/480p/dog" ] && [ -d "$DAVIS/JPEGImages/480p/car-roundabout" ]; then
  echo
  echo "== 5/5  the default model ('real') on real video: DAVIS-2016 dog and car-roundabout"
  echo "        from $DAVIS (CC BY-NC 4.0; both are training sequences of 'real', so this"
  echo "        shows the model at work, not its held-out accuracy: see models/real/MODEL_CARD.md)"
  for part in JPEGImages Annotations; do
    mkdir -p "$OUT/davis/$part/480p"
    for seq in dog car-roundabout; do ln -sfn "$DAVIS/$part/480p/$seq" "$OUT/davis/$part/480p/$seq"; done
  done
  vsis run "$OUT/davis" --out "$OUT/real"
  vsis eval --pred "$OUT/real/instances" --gt "$OUT/davis/Annotations/480p" --protocol davis2016 \
    --out "$OUT/real_davis2016.json"
  echo "overlay videos of the default model: $(ls "$OUT"/real/overlay/*.mp4 | tr '\n' ' ')"
else
  echo
  echo "== 5/5  skipped: no ../shared/data/davis2016 beside this checkout (real frames for the default model)"
fi
