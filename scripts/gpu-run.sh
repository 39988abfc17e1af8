#!/usr/bin/env bash
# Everything this project checks on the NVIDIA GPU machine, in one call (run through on-gpu.sh):
#   device run: bash .gpu-carry/on-gpu.sh bash scripts/gpu-run.sh   with carry [".gpu-carry", ".gpu-data"]
# 1. ResNet-18 training throughput, ours (WebGPU/Dawn/Vulkan) and PyTorch's on the same card;
# 2. with KERNEL_BENCH=1, matmul and conv2d kernel benchmarks (no tfjs there);
# 3. the CIFAR-10 unlearning table (all methods, RTE on this card), sized to the time left.
# Writes everything under $OUT (logs, JSON, the report). Budget: EXP_BUDGET seconds for step 3.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
T=node_modules/.bin/tsx
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt"
$T bench/resnet.ts --batch 32,128 --out "$OUT/resnet.json" 2>&1 | grep -v Warning | tee "$OUT/bench.log"
PYTHONUNBUFFERED=1 python3 bench/resnet_torch.py --out "$OUT/resnet_torch.json" 2>&1 | tee -a "$OUT/bench.log"
if [ "${KERNEL_BENCH:-0}" = 1 ]; then
$T bench/matmul.ts --no-tf --shapes 1024,2048,4096 --min-time 1 --out "$OUT/matmul.json" 2>&1 | grep -v Warning | tee -a "$OUT/bench.log"
$T bench/conv.ts --no-tf --batch 32 --min-time 0.5 --out "$OUT/conv.json" 2>&1 | grep -v Warning | tail -25 | tee -a "$OUT/bench.log"
fi
spent=$(( $(date +%s) - start ))
budget=${EXP_BUDGET:-$(( 480 - spent ))}
echo "benchmarks took ${spent}s; experiment budget ${budget}s" | tee -a "$OUT/bench.log"
node scripts/gpu-config.mjs "$OUT/resnet.json" "$budget" "$OUT/cifar10-config.json" | tee "$OUT/experiment.log"
timeout $(( budget + 60 )) $T src/cli/main.ts unlearn --config "$OUT/cifar10-config.json" --out runs/cifar10-gpu \
  --budget-minutes "$(awk "BEGIN{print $budget*0.8/60}")" 2>&1 | grep -v -E 'Warning|%.*<' | tee -a "$OUT/experiment.log"
cp runs/cifar10-gpu/report.* runs/cifar10-gpu/results.json "$OUT/" 2>/dev/null
echo "total $(( $(date +%s) - start ))s"
