#!/usr/bin/env bash
# Train both networks on one CUDA GPU, from a bare checkout, in one command (issue #14 item 4):
#
#     bash bench/gpu_train.sh OUTDIR [MINUTES] [more options of bench/gpu_train.py]
#
# simulates the training set on the GPU, trains the full and the small network from the shipped
# weights for the wall-clock budget (default 9 minutes in all), assembles OUTDIR/weights, evaluates
# the shipped and the new weights side by side and writes the figures and OUTDIR/summary.json
# (bench/gpu_train.py says what each phase does). CPU smoke run: bash bench/gpu_train.sh OUT 1 --tiny
#
# GPU nodes are often offline and bring their own PyTorch: this script never installs torch. The
# pure-Python packages training needs and such an image may lack (diffusers, colossus,
# importlib_metadata) travel as wheels: on a machine with a network, `bash bench/gpu_wheels.sh`
# puts them in .whl/; copy the checkout with .whl/ to the GPU node; there, this script installs
# them into OUTDIR/site with --no-index (nothing is fetched) and puts that and the checkout on
# PYTHONPATH. Without .whl/, the packages already installed are used. PYTHON selects the
# interpreter (default python3).
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash bench/gpu_train.sh OUTDIR [MINUTES] [options of bench/gpu_train.py]" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$1"; shift
MINUTES="9"
if [ $# -ge 1 ] && [[ "$1" =~ ^[0-9.]+$ ]]; then MINUTES="$1"; shift; fi
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
if compgen -G "$ROOT/.whl/*.whl" > /dev/null; then
    echo "installing $(ls "$ROOT"/.whl/*.whl | wc -l) wheels from .whl/ into $OUT/site (no index)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$OUT/site" "$ROOT"/.whl/*.whl
    export PYTHONPATH="$OUT/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# found without importing them (an import of torch and diffusers costs seconds)
"$PY" -c "import importlib.util as u, sys; m = [n for n in ('torch', 'diffusers', 'colossus') if u.find_spec(n) is None]; print('missing: ' + ', '.join(m), file=sys.stderr) if m else None; sys.exit(bool(m))" || {
    echo "run bench/gpu_wheels.sh where there is a network and bring .whl/ along" >&2; exit 3; }
exec "$PY" "$ROOT/bench/gpu_train.py" "$OUT" --minutes "$MINUTES" "$@"
