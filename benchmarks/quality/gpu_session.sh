#!/usr/bin/env bash
# One lent GPU machine, one call: the simulated learning curve (300k and 1M events: model on the GPU, the
# baselines and the oracle on its CPUs) and the peers protocol on yoochoose and taobao with the repeat
# mixture, all at once. The machine's image has torch and Lightning but not MLflow (nothing here logs to it),
# LightGBM or pandas 3: their wheels travel in .whl/, the harness and its datasets in .gpu/ (both ignored).
#   run(command="bash benchmarks/quality/gpu_session.sh", carry=[".whl", ".gpu"], timeout_s=590)
# Results land in $OUT/results.tgz (the device tool copies it back); every job is cut BUDGET seconds after the start.
# Smoke test on a CPU: SIZES=20000 MINUTES=0.2 BUDGET=300 PEERS_DATASETS=diginetica PEERS_EXTRA=--quick GPU_ACCELERATOR=cpu SKIP_WHEELS=1
set -u
BUDGET=${BUDGET:-540}
OUT=${OUT:-/tmp/gpu-out}
SIZES=${SIZES:-300000 1000000}
MINUTES=${MINUTES:-3.5}  # training time of each simulated run (Lightning's Timer keeps the best epoch so far)
SEEDS=${SEEDS:-1}  # one training process per seed and size, side by side on the one GPU
BASELINES=${BASELINES:-1}  # 0: the baselines and the oracle were scored already (they are deterministic)
PEERS_DATASETS=${PEERS_DATASETS-yoochoose taobao}
PEERS_EXTRA=${PEERS_EXTRA:-}  # e.g. --quick for a smoke test
END=$((SECONDS + BUDGET))
R=/tmp/gpu-results  # the device tool brings back 8 files at most: everything goes into one archive
mkdir -p "$OUT" "$R"
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
export PEERS_DATA_ROOT=$PWD/.gpu/datasets
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$R/machine.txt"; nproc >> "$R/machine.txt"
GPU="train.accelerator=${GPU_ACCELERATOR:-gpu}"
PEERS="train.refit=true train.max_epochs=60 train.patience=10 model.repeat=true"
job() {  # name, command...: cut at the budget, output to $OUT/name.log
  local name=$1; shift
  ( timeout $((END - SECONDS)) "$@" > "$R/$name.log" 2>&1; echo "exit $?" >> "$R/$name.log" ) &
}
Q=benchmarks/quality/ablate.py
for d in $PEERS_DATASETS; do
  job "peers-$d-repeat" python3 -m benchmarks.peers.run --datasets $d --seeds 3 --peers .gpu/peers --threads 2 \
      --out "$R" --tag "gpu-$d-repeat" $PEERS_EXTRA --config $GPU $PEERS
  job "peers-$d-repeat-h49-cooc32" python3 -m benchmarks.peers.run --datasets $d --seeds 3 --peers .gpu/peers \
      --threads 2 --out "$R" --tag "gpu-$d-repeat-h49-cooc32" $PEERS_EXTRA --config $GPU $PEERS model.history=49 model.cooc_neighbours=32
done
sims=()
for n in $SIZES; do  # simulated once, before the two jobs that read it start
  python3 -c "from training.config import DataConfig as D; from events.source import simulated_dataset as s; s($n, D().simulate_seed, 7)" &
  sims+=($!)
done
wait "${sims[@]}"
for n in $SIZES; do
  tag=sim$((n / 1000))k
  [ "$BASELINES" = 1 ] && job "$tag-base" python3 $Q --name default --dataset "$tag" --baselines-only --results "$R" \
      --set data.simulate_events=$n
  for seed in $SEEDS; do
    job "$tag-model-seed$seed" python3 $Q --name default --dataset "$tag" --no-baselines --seeds "$seed" \
        --results "$R" --set data.simulate_events=$n --set $GPU --max-minutes "$MINUTES"
  done
done
wait
tail -n 3 "$R"/*.log
tar -czf "$OUT/results.tgz" -C "$R" .
