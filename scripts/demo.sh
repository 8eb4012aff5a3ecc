#!/usr/bin/env bash
# make demo: a synthetic scene -> rosbag2 -> the real three-node ROS 2 graph on the shipped
# default model -> metrics, latency table and overlay videos.
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

echo "== 1/4  synthetic scene: 2 videos, 40 frames, 320x240 -> $OUT/synth"
vsis synth "$OUT/synth" --videos 2 --seed 2026 --frames 40

echo "== 2/4  rosbag2 (mcap) with images and ground truth -> $OUT/bags"
vsis bag make "$OUT/synth" "$OUT/bags"

echo "== 3/4  replay through perception, tracking and semantic nodes (3 processes, model '$MODEL')"
vsis replay "$OUT/bags" --out "$OUT/replay" --model "$MODEL" --graph processes

echo "== 4/4  metrics on the graph's outputs"
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
