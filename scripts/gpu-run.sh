#!/usr/bin/env bash
# Everything this project checks on the NVIDIA GPU machine, in one call (run through on-gpu.sh):
#   device run: bash .gpu-carry/on-gpu.sh bash scripts/gpu-run.sh   with carry [".gpu-carry", ".gpu-data"]
# 1. ResNet-18 training throughput, ours (WebGPU/Dawn/Vulkan) and PyTorch's on the same card;
# 2. f32 vs f16 matmul (MM_SIZES, default 4096) and the mixed-precision ResNet-18 step at batch 128,
#    ours (bench/amp.ts) and PyTorch's (bench/amp_torch.py: cuBLAS f32 with TF32 off, cuBLAS f16, bf16
#    autocast step);
# 3. with KERNEL_BENCH=1, matmul and conv2d kernel benchmarks (no tfjs there);
# 4. the CIFAR-10 unlearning table (all methods, RTE on this card), sized to the time left, then
#    PyTorch's SFR-on on the same checkpoints, split, data and iteration count (bench/torch_unlearn.py);
# 5. OUT/summary.json (scripts/gpu_summary.py): device, driver, date and the ratios ours / PyTorch
#    matmul_f32, matmul_f16, resnet18_f32, resnet18_mixed, sfron_e2e (> 1 = we are faster); commit it
#    as bench/results/gpu/summary.json.
# Writes everything under $OUT (logs, JSON, the report). Budget: EXP_BUDGET seconds for step 4.
# Steps 2, 4's PyTorch part and 5 were added without a GPU machine to try them on: unrun so far.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
T=node_modules/.bin/tsx
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
$T bench/resnet.ts --batch 32,128 --out "$OUT/resnet.json" 2>&1 | grep -v Warning | tee "$OUT/bench.log"
PYTHONUNBUFFERED=1 python3 bench/resnet_torch.py --out "$OUT/resnet_torch.json" 2>&1 | tee -a "$OUT/bench.log"
MM=${MM_SIZES:-4096}
timeout 240 $T bench/amp.ts --shapes "$MM" --mlp-batch 128 --resnet-batch 128 --width 64 --min-time 1 --out "$OUT/amp.json" 2>&1 | grep -v Warning | tee -a "$OUT/bench.log"
PYTHONUNBUFFERED=1 python3 bench/amp_torch.py --sizes "$MM" --batch 128 --out "$OUT/amp_torch.json" 2>&1 | tee -a "$OUT/bench.log"
if [ "${KERNEL_BENCH:-0}" = 1 ]; then
$T bench/matmul.ts --no-tf --shapes 1024,2048,4096 --min-time 1 --out "$OUT/matmul.json" 2>&1 | grep -v Warning | tee -a "$OUT/bench.log"
$T bench/conv.ts --no-tf --batch 32 --min-time 0.5 --out "$OUT/conv.json" 2>&1 | grep -v Warning | tail -25 | tee -a "$OUT/bench.log"
fi
spent=$(( $(date +%s) - start ))
# 90 s are kept for PyTorch's SFR-on run and the summary after the experiment
budget=${EXP_BUDGET:-$(( 390 - spent ))}
echo "benchmarks took ${spent}s; experiment budget ${budget}s" | tee -a "$OUT/bench.log"
node scripts/gpu-config.mjs "$OUT/resnet.json" "$budget" "$OUT/cifar10-config.json" | tee "$OUT/experiment.log"
timeout $(( budget + 60 )) $T src/cli/main.ts unlearn --config "$OUT/cifar10-config.json" --out runs/cifar10-gpu \
  --budget-minutes "$(awk "BEGIN{print $budget*0.8/60}")" 2>&1 | grep -v -E 'Warning|%.*<' | tee -a "$OUT/experiment.log"
cp runs/cifar10-gpu/report.* runs/cifar10-gpu/results.json "$OUT/" 2>/dev/null
# PyTorch's SFR-on with our run's settings: iterations, data archive and subset sizes from the config
sf=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); d=c['data']; s=[m for m in c['methods'] if m['method']=='SFR-on'][0]; print(s['iterations'], d['archive'], d.get('trainLimit', 0), d.get('testLimit', 0))" "$OUT/cifar10-config.json")
read -r sf_iters sf_data sf_train sf_test <<< "$sf"
if [ -n "${sf_iters:-}" ] && [ -f runs/cifar10-gpu/split.json ]; then
  timeout 120 python3 bench/torch_unlearn.py --run runs/cifar10-gpu --data "$sf_data" --train-limit "$sf_train" --test-limit "$sf_test" \
    --methods SFR-on --override "{\"SFR-on\": {\"iterations\": $sf_iters}}" --out "$OUT/torch_unlearn.json" 2>&1 | tee -a "$OUT/experiment.log"
fi
python3 scripts/gpu_summary.py "$OUT" 2>&1 | tee -a "$OUT/bench.log"
echo "total $(( $(date +%s) - start ))s"
