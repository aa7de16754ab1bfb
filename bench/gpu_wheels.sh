#!/usr/bin/env bash
# Download the pure-Python wheels that bench/gpu_train.sh needs on an offline GPU node whose image
# has PyTorch, numpy, scipy, matplotlib, safetensors, huggingface_hub and tqdm but not these, into
# .whl/ of the checkout (ignored by git). Versions are the ones constraints.txt pins.
#
#     bash bench/gpu_wheels.sh            # then copy the checkout, .whl/ included, to the GPU node
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
pins=()
for name in diffusers colossus importlib_metadata; do
    pin="$(grep -i -E "^${name//_/[-_]}==" "$ROOT/constraints.txt" || true)"
    pins+=("${pin:-$name}")
done
python3 -m pip download --no-deps --only-binary=:all: -d "$ROOT/.whl" "${pins[@]}"
ls -l "$ROOT/.whl"
