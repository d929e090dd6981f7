#!/usr/bin/env bash
# Builds every shipped model under several option sets and prints the sha256 of every artifact
# file: run it before and after a change that should not change what is built, and diff.
#
#     bash benchmarks/artifact_hashes.sh > before.txt; ...; bash benchmarks/artifact_hashes.sh | diff before.txt -
set -euo pipefail
cd "$(dirname "$0")/.."
NC="${NC:-.venv/bin/neurocompile}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
b() { name=$1; shift; "$NC" build "$@" -o "$out/$name.ncx" > /dev/null; }
b mlp graphs/digits_mlp.onnx
b mlp_cal graphs/digits_mlp.onnx --calibrate graphs/digits_calib_x.npy
b mlp_l1 graphs/digits_mlp.onnx --target loihi1-sim
b cnn graphs/digits_cnn.onnx
b cnn_cal graphs/digits_cnn.onnx --calibrate graphs/digits_calib_x.npy --target loihi2
b relu graphs/digits_mlp_relu.onnx --calibrate graphs/digits_calib_x.npy
b relu_rate graphs/digits_mlp_relu.onnx --calibrate graphs/digits_calib_x.npy --encoding rate --seed 3
b mst graphs/digits_mst.onnx
b mst_tel graphs/digits_mst.onnx --product telescoping --v-init 0.25
b rsm graphs/digits_mst_rsm.onnx
b rsm_cal graphs/digits_mst_rsm.onnx --calibrate graphs/digits_mst_test_x.npy --mask-ratio attn=0.5
b rsm_syn graphs/digits_mst_rsm.onnx --failure-mode synapse --mask-ratio 0.25
b mst_halapoint graphs/digits_mst.onnx --target loihi2-halapoint
cd "$out" && find . -type f | sort | xargs sha256sum
