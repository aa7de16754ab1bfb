#!/usr/bin/env bash
# One arm of the training-recipe comparison (issue #14 item 3; README "Training recipe per compute hour"):
#
#     bash bench/recipe_arm.sh NAME [options of explorer train]      # e.g. cosine --lr-decay cosine
#
# continues the shipped small network for STEPS (default 800) steps with the given options into
# runs/recipe/NAME/run (CPU time in runs/recipe/NAME/train.log, from /usr/bin/time -v), attaches it
# to a copy of weights/ and evaluates it over sampler seeds 0, 1000, 2000 (runs/recipe/eval_NAME.json).
# Then: python bench/plot_recipe.py --start shipped=weights/small:runs/recipe/eval_shipped.json \
#           NAME=runs/recipe/NAME/weights/small:runs/recipe/eval_NAME.json:runs/recipe/NAME/train.log
# (eval_shipped.json: explorer evaluate --weights weights --seeds 0 1000 2000 --json ...).
set -euo pipefail
cd "$(dirname "$0")/.."
R=runs/recipe; arm=$1; shift
SMALL="--channels 16 32 64 64 --layers-per-block 1 --attention-levels 1 --norm-groups 8"
mkdir -p $R/$arm
/usr/bin/time -v python -m explorer train --data data/train --run-dir $R/$arm/run --init weights/small $SMALL \
   --lr 5e-4 --warmup 50 --max-steps "${STEPS:-800}" --val-every 0 --ckpt-every 200 --log-every 25 "$@" \
   > $R/$arm/train.log 2>&1
rm -rf $R/$arm/weights; cp -r weights $R/$arm/weights
python -m explorer attach-network $R/$arm/run/last --weights $R/$arm/weights --name small
python -m explorer evaluate --weights $R/$arm/weights --seeds 0 1000 2000 --json $R/eval_$arm.json > $R/eval_$arm.log 2>&1
