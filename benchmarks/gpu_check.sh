#!/usr/bin/env bash
# The simulator's checks on a CUDA machine, in one run: the cuda-marked tests (the GPU gives the
# CPU's integers), then the CIFAR-sized and Swin-T-shaped benchmarks against the float loop on the
# same GPU, with peak GPU memory. Lava is not needed (nor installable where Python is newer than
# 3.10): the package is installed without its dependencies and the simulator's are added.
#
#     bash benchmarks/gpu_check.sh            # writes its figures to ${OUT:-gpu_check}/
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check}"
mkdir -p "$out"
python3 -m pip install --quiet --no-deps -e . 2>&1 | tail -1 || true
python3 -m pip install --quiet "array-api-compat==1.16.0" numba networkx scipy rich typer tomli pytest onnx 2>&1 | tail -1 || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/device.txt"
python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_simulator.py 2>&1 | tee "$out/cuda_tests.txt" | tail -3
python3 benchmarks/sim_vs_reference.py --device cuda --batch 64 --steps 64 2>&1 | tee "$out/cifar_cuda.txt" | tail -4
python3 benchmarks/sim_vs_reference.py --device cuda --swin-t --batch 32 --steps 64 --repeats 1 2>&1 | tee "$out/swin_t_cuda.txt" | tail -4
