#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one prepared script: the GPU test suite, then the GPU
# benchmarks, each recorded as a results page (docs/results/data/NAME.json) by docs/results/record.py.
#
#   bash benchmarks/device_checks.sh DATA_DIR OUT_DIR STAGE...
#
# DATA_DIR holds mnist/ and cifar10-subset/ (../shared/data); OUT_DIR receives the logs and a
# tarball of the pages written. Stages, in the order given, each under its own time limit so that
# a slow one cannot take the others' time (a stage stopped by its limit keeps, as a page marked
# partial, whatever figures its benchmark had written by then: record.py --keep-partial; the script
# goes on with the next stage and exits 1 at the end, naming the stages that failed):
#   env        the GPU, the driver and torch
#   tests      pytest -m gpu --devices "$DEVICE" (make test-gpu) with the repository's tests
#   certify    benchmarks/certify.py on the GPU at Cohen et al.'s n (500 images, n = 10,000), with
#              the torch.compile way and a profile of the batched draws
#   twin       benchmarks/twin_speed.py on the GPU: speed table and a 60-second fit of the GPU default
#              (NCHW, elementwise readout, batch 32) and of the same at batch 64
#   cifar-quick, cifar-MODEL   benchmarks/cifar_noise_defenses.py (a smoke run; one model, limit
#              $CIFAR_LIMIT, default 600 s: the hidden model took 208 s alone on an H200, the input
#              model 341 s beside one other job)
#   gr-task    benchmarks/continual.py: Permuted MNIST (padded to 32 x 32), task-IL generative
#              replay, seed $GR_SEED (default 2), on the GPU
# Stages joined by commas (tests,cifar-hidden,cifar-input) run at the same time and share the GPU:
# a lane's timings then include the others' load, so time-critical stages (certify, twin) go alone,
# and so do many-small-step jobs (gr-task: 432 s alone on an H200, stopped at 420 s beside five lanes).
# Python is $PYTHON (default python3); $COMMIT is the commit the stamps name, required on a GPU by
# the stages that record a page (a copy of the working tree on a device machine carries no reliable
# git history: a stale one was read as the commit of earlier pages); add " with uncommitted
# changes" where the copy has some.
set -u
DATA=$(cd "$1" && pwd)
OUT=$2
shift 2
mkdir -p "$OUT"
MARK=$(mktemp)  # pages written after this are the ones this run made
trap 'rm -f "$MARK"' EXIT
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # cpu to try the script on a machine without a GPU
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 NEUROAIKIT_SHARED_DATA="$DATA"
# the copy's own git history can be missing or stale: the caller names the commit it copied
STAMP=()
if [ -n "${COMMIT:-}" ]; then STAMP=(--commit "$COMMIT"); fi

# record NAME LIMIT_S TITLE DESCRIPTION -- COMMAND...
record() {
    local name=$1 limit=$2 title=$3 description=$4
    shift 5
    if [ -z "${COMMIT:-}" ] && [ "$DEVICE" != cpu ]; then
        echo "== $name: not run: set COMMIT to the commit the working tree was copied from" >&2
        return 2
    fi
    echo "== $name (limit ${limit} s)"
    timeout "$limit" "$PY" docs/results/record.py "$name" ${STAMP[@]+"${STAMP[@]}"} --overwrite --keep-partial --title "$title" \
        --description "$description" -- "$@" 2>&1 | tee "$OUT/$name.log" | tail -40
    local status=${PIPESTATUS[0]}
    echo "== $name: exit $status"
    return "$status"
}

CIFAR_GPU=(--device "$DEVICE" --n-examples 100 --eps 8 --l2-eps 0.5 --max-extensions 1 --n-certify 200)

# run_stage STAGE: runs one stage, returns its exit status
run_stage() {
    local stage=$1 status=0 model seed
    case $stage in
    env)
        nvidia-smi -L
        "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))" \
            || status=$?
        ;;
    tests)
        timeout 300 "$PY" -m pytest -q -m gpu --devices "$DEVICE" -p no:cacheprovider --durations=10 2>&1 | tee "$OUT/tests.log" | tail -30
        status=${PIPESTATUS[0]}
        ;;
    certify)
        record certify_cuda 240 "Certification speed on a GPU: batched draws against per-image loops" \
            "benchmarks/certify.py on one CUDA GPU at Cohen et al.'s number of draws: images certified per second by the batched certifier against the reference per-image loop of Cohen et al.'s code and our own per-image path, same model, n0, n and alpha, the batched certifier through torch.compile, in float32 and under bf16 autocast, and the weight layers' bounds in float32 and bf16; every way run once untimed first; then the batched draws once more under torch.profiler (where their device time goes)." \
            -- "$PY" benchmarks/certify.py --data-dir "$DATA/mnist" --device "$DEVICE" --images 500 --n 10000 --repeats 1 \
            --compile --profile || status=$?
        ;;
    twin)
        record twin_speed_cuda 240 "Digital twin training speed on a GPU" \
            "benchmarks/twin_speed.py on one CUDA GPU: training samples per second of each recipe on the Lurz-size synthetic recording (12,800 timed samples, about three epochs), then the GPU default (NCHW, elementwise readout, batch 32) and the same at batch 64 each fitted for 60 seconds through the execution layer (validation correlation against wall time, test-tier correlation)." \
            -- "$PY" benchmarks/twin_speed.py --device "$DEVICE" --threads 1 --samples 12800 --curve 60 --curve-recipes readout-b32,readout || status=$?
        ;;
    cifar-quick)
        record cifar_noise_defenses_quick_cuda 120 "CIFAR-10 noise defenses: smoke run on a GPU" \
            "benchmarks/cifar_noise_defenses.py --quick on one CUDA GPU: every stage of the comparison at toy size, to check that it runs and to time it; not a result." \
            -- "$PY" benchmarks/cifar_noise_defenses.py --data-dir "$DATA/cifar10-subset" --quick --device "$DEVICE" \
            --out /tmp/cifar-quick --overwrite || status=$?
        ;;
    gr-task)
        seed=${GR_SEED:-2}
        record "continual_permuted_32_gr_task_seed${seed}_cuda" "${GR_LIMIT:-540}" \
            "Continual learning: Permuted MNIST (10 tasks) padded to 32 x 32, task-IL generative replay, seed $seed on a GPU" \
            "Deep generative replay (a separate VAE trained on the current task and replayed samples, each replayed image given one earlier task's head at random and labelled by the previous network's most probable class among that head's outputs, replay weighted 1 - 1/t) in the task-incremental scenario of Permuted MNIST (one 10-unit head per task) at van de Ven & Tolias 2019's protocol (2 x 1,000 ReLU units, 5,000 iterations per task, Adam lr 1e-4, batch 128), images padded by 2 zero pixels on every side before their pixels are permuted, as the authors' code loads them; seed $seed in one process on one CUDA GPU, beside the printed mean (transcribed, not verified)." \
            -- "$PY" benchmarks/continual.py --data-dir "$DATA" --benchmark permuted-mnist --scenarios task \
            --strategies generative-replay --seeds "$seed" --strengths 2019 --pad 2 --device "$DEVICE" || status=$?
        ;;
    cifar-*)
        model=${stage#cifar-}
        record "cifar_noise_defenses_$model" "${CIFAR_LIMIT:-600}" \
            "CIFAR-10 noise defenses on a GPU: $model ResNet-18" \
            "benchmarks/cifar_noise_defenses.py on one CUDA GPU for the $model model: a pre-activation ResNet-18 trained on the 4,000 images of the shared CIFAR-10 subset, then the attack protocol in Linf at 8/255 and in L2 at 0.5 on the first 100 test images, and certification on the first 200 (randomized smoothing at sigma 0.25; PixelDP at the hidden noise site for the hidden model)." \
            -- "$PY" benchmarks/cifar_noise_defenses.py --data-dir "$DATA/cifar10-subset" --models "$model" \
            "${CIFAR_GPU[@]}" ${CIFAR_ARGS:-} --out "/tmp/cifar-$model" --overwrite || status=$?
        ;;
    *)
        echo "unknown stage $stage" >&2
        status=2
        ;;
    esac
    return "$status"
}

failed=()
for stage in "$@"; do
    start=$SECONDS
    status=0
    if [[ $stage == *,* ]]; then  # a set of lanes: every stage in it at once, each with its own status
        IFS=, read -ra lanes <<< "$stage"
        pids=()
        for lane in "${lanes[@]}"; do run_stage "$lane" & pids+=($!); done
        for i in "${!lanes[@]}"; do
            wait "${pids[$i]}" || { status=1; failed+=("${lanes[$i]}"); }
        done
    else
        run_stage "$stage" || { status=$?; failed+=("$stage"); }
    fi
    echo "== stage $stage took $((SECONDS - start)) s, exit $status"
    # after every stage, so that a run stopped from outside still returns the pages it made
    find docs/results/data -name '*.json' -newer "$MARK" | tar -czf "$OUT/pages.tar.gz" -T -
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "== failed stages: ${failed[*]}"
    exit 1
fi
