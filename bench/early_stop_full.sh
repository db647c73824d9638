#!/usr/bin/env bash
# Full training (train: 3000 steps, 2 seeds) of the recommended student of each run of
#   python bench/search_efficiency.py --task mnist1d --space mnist1d-cnn --seeds 3 --trials 40 --steps 150 --lr 0.01 --temperature 1 --arms tpe,tpe+early --runs /tmp/nas_student_bench/early_stop_mnist1d
# two lanes in parallel (one thread each); results in $R/full-RUN/report.json (results/records/early_stop_mnist1d.md).
cd "$(dirname "$0")/.." && . .venv/bin/activate
export OMP_NUM_THREADS=1
R=/tmp/nas_student_bench/early_stop_mnist1d
lane() { for run in "$@"; do nas-student train $run --results-dir $R --seeds 2 --no-baseline --out $R/full-$run > $R/full-$run.log 2>&1; echo "$run done $(date +%T)"; done; }
lane tpe-s0 tpe-s1 tpe-s2 &
lane tpe_early-s0 tpe_early-s1 tpe_early-s2 &
wait
