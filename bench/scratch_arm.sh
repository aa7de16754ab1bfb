#!/usr/bin/env bash
# One from-scratch arm of the small network's training recipe (issue #14 item 3; README "Training
# recipe per compute hour"): the shipped small network's recipe, from random initialisation, with
# the options given (a training seed, more steps, another data set), attached beside the shipped one
# for a side-by-side evaluation:
#
#     DATA=data/train STEPS=2000 bash bench/scratch_arm.sh NAME [options of explorer train]
#     # e.g.  bash bench/scratch_arm.sh seed1 --seed 1
#     #       DATA=data/train1000 STEPS=4000 bash bench/scratch_arm.sh d1000_4k
#
# trains into runs/scratch/NAME/run (CPU time from /usr/bin/time -v in runs/scratch/NAME/train.log),
# attaches its last EMA weights as sub-network NAME of runs/scratch/weights (a copy of weights/ made on
# first use), and refits that network's map-mean model on its own training maps (`explorer
# refit-mean-level`, as the shipped small network's was). Then evaluate every arm beside the shipped
# network in one run, 3 sampler seeds x the 20 twin cosmologies x 15 maps:
#
#     python bench/bench_emulator.py --weights runs/scratch/weights --skip-timing --skip-onep \
#         --configs sde-dpmsolver++-karras-gauss:30@shipped sde-dpmsolver++-karras-gauss:30@NAME ... --json F
#
# The run takes the shipped weights' normalisation (`--normalization-from weights`): a network can only be
# attached beside another that normalises maps identically, and training data re-simulated on another
# CPU family differs by ~1e-5 dex in its percentile range (the simulator is not bit-identical across
# CPUs), a larger set by more.
set -euo pipefail
cd "$(dirname "$0")/.."
R=runs/scratch; arm=$1; shift
DATA=${DATA:-data/train}
SMALL="--channels 16 32 64 64 --layers-per-block 1 --attention-levels 1 --norm-groups 8"
mkdir -p $R/$arm
/usr/bin/time -v python -m explorer train --data "$DATA" --run-dir $R/$arm/run $SMALL \
   --lr 5e-4 --warmup 100 --max-steps "${STEPS:-2000}" --val-every 0 --ckpt-every 200 --log-every 25 --normalization-from weights "$@" \
   > $R/$arm/train.log 2>&1
# the shipped small network also as "shipped": "small" names the folder's default sampling network,
# which each attach-network below makes the newest arm
[ -d $R/weights ] || { cp -r weights $R/weights && cp -r weights/small $R/weights/shipped; }
python -m explorer attach-network $R/$arm/run/last --weights $R/weights --name "$arm"
python -m explorer refit-mean-level $R/weights/$arm --data "$DATA"
echo "arm $arm ready: runs/scratch/weights/$arm"
