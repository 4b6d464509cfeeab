#!/usr/bin/env bash
# Interleaved A/B of the one-process `train` and `twin fit` commands: today's code and the revision
# before the workflow core take turns (one thread each), so machine load hits both alike.
# Prints train samples/s and twin fit seconds per turn.
#   benchmarks/regression_ab.sh [DATA_DIR] [OLD_REV] [TURNS]     (defaults: ../shared/data 8327899 3)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$REPO/.venv/bin/python}"
DATA="$(cd "${1:-$REPO/../shared/data}" && pwd)"
OLD_REV="${2:-8327899}"
TURNS="${3:-3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/old" && git -C "$REPO" archive "$OLD_REV" src | tar -x -C "$WORK/old"
export OMP_NUM_THREADS=1
TRAIN=(train --dataset mnist --data-dir "$DATA" --train-subset 2000 --test-subset 500 --epochs 1 --batch-size 128
       --noise relu2=gaussian:0.3 --eval-draws 3 --no-report)
TWIN=(twin fit synthetic --synthetic n_neurons=200 --synthetic "image_shape=[36,64]" --synthetic n_train=600
      --synthetic n_validation=200 --synthetic n_test_images=10 --synthetic repeats=2 --max-epochs 2 --patience 100
      --no-baselines --no-report --threads 1)
figure() {  # $1 run folder, $2 train|twin
  "$PY" -c "import json,sys; m=json.load(open(sys.argv[1]+'/metrics.json'))
print(round(m['n_train']*len(m['history'])/m['train_time_s'],1) if sys.argv[2]=='train' else round(m['fit_seconds'],1))" "$1" "$2"
}
echo "turn  train new  train old  (samples/s)   twin new  twin old  (s of fitting)"
for turn in $(seq 1 "$TURNS"); do
  "$PY" -m neuroaikit "${TRAIN[@]}" --threads 1 --quiet --out "$WORK/tn$turn" > /dev/null
  PYTHONPATH="$WORK/old/src" "$PY" -m neuroaikit.cli.main "${TRAIN[@]}" --out "$WORK/to$turn" > /dev/null
  "$PY" -m neuroaikit "${TWIN[@]}" --quiet --out "$WORK/wn$turn" > /dev/null 2>&1
  PYTHONPATH="$WORK/old/src" "$PY" -m neuroaikit.cli.main "${TWIN[@]}" --out "$WORK/wo$turn" > /dev/null 2>&1
  printf "%4s %10s %10s %24s %9s\n" "$turn" "$(figure "$WORK/tn$turn" train)" "$(figure "$WORK/to$turn" train)" \
    "$(figure "$WORK/wn$turn" twin)" "$(figure "$WORK/wo$turn" twin)"
done
