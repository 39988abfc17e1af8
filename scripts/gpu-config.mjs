// Sizes the CIFAR-10 GPU experiment (configs/cifar10-gpu.json) to a time budget from the measured
// ResNet-18 training throughput (bench/resnet.ts JSON), so one device call finishes with a full
// table: pretraining and RT get about 45% of the budget, evaluation ~20%, the methods the rest.
// Usage: node scripts/gpu-config.mjs RESNET_JSON BUDGET_SECONDS OUT_CONFIG
import { readFileSync, writeFileSync } from 'node:fs';
const [resnetJson, budgetArg, outPath] = process.argv.slice(2);
const budget = Number(budgetArg);
const r = JSON.parse(readFileSync(resnetJson, 'utf8')).results;
const ips = (r.find((x) => x.batch === 128) ?? r[r.length - 1]).imagesPerSec;
const cfg = JSON.parse(readFileSync('configs/cifar10-gpu.json', 'utf8'));
// TRAIN_LIMIT / TEST_LIMIT: class-balanced subsets when the call is too short for the full set
const N = Number(process.env.TRAIN_LIMIT ?? 50000), Nr = 0.9 * N, Nf = 0.1 * N;
if (N < 50000) cfg.data.trainLimit = N;
if (process.env.TEST_LIMIT) cfg.data.testLimit = Number(process.env.TEST_LIMIT);
const trainBudget = 0.45 * budget;
const epochs = Math.max(1, Math.min(cfg.pretrain.epochs, Math.floor((trainBudget * ips) / (N + Nr))));
cfg.pretrain.epochs = epochs;
cfg.retrain.epochs = epochs;
// each of the 7 methods gets ~5% of the budget in training images
const perMethod = (0.05 * budget * ips);
const ep = (imgsPerEpoch) => Math.max(1, Math.min(10, Math.floor(perMethod / imgsPerEpoch)));
cfg.methods = [
  // SFR-on: 1.2 batches of 128 per iteration (forget every 5th) plus its two Fisher passes (forward+backward, eval mode)
  { method: "SFR-on", iterations: Math.max(50, Math.min(1500, Math.floor(perMethod / (1.2 * 128)))) },
  { method: 'FT', epochs: ep(Nr) },
  { method: 'GA', epochs: Math.min(9, ep(Nf)) },
  { method: 'RL', epochs: ep(N) },
  { method: 'SalUn', epochs: ep(N) },
  { method: 'BT', epochs: ep(N * 1.6) },
  { method: 'SCRUB', epochs: ep(Nr + Nf) },
];
cfg.name = `CIFAR-10 (JPEG release${N < 50000 ? `, ${N}-image class-balanced training subset` : ''}), ResNet-18, 10% random forgetting; pretrain/RT ${epochs} epochs and method budgets sized to one ${Math.round(budget)} s GPU call`;
writeFileSync(outPath, JSON.stringify(cfg, null, 2));
console.log(`throughput ${ips.toFixed(0)} img/s -> pretrain/RT ${epochs} epochs; methods ${JSON.stringify(cfg.methods)}`);
