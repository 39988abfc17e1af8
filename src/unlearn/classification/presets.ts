// Method defaults per setting, from the authors' code (Classification/unlearn/*.py): CIFAR-10 /
// ResNet-18 (each file's active "CIFAR10" block; SCRUB's is the commented one, its active block is
// the TinyImageNet setting), TinyImageNet / Swin-T (the commented "TinyImageNet" block at the top of
// each file) and this repository's MNIST demo (CIFAR-10's settings with budgets scaled to 5,000
// 14x14 images on a CPU). Data only: no code runs here.

import type { Presets, SfrOnConfig } from '../core/methods.js';

const cifarSgd = (lr: number) => ({ kind: 'sgd' as const, lr, momentum: 0.9, weightDecay: 5e-4 });
const tinyAdamW = (lr: number) => ({ kind: 'adamw' as const, lr, weightDecay: 0.05 });

/** The authors' CIFAR-10 / ResNet-18 settings (spec §3-4). */
export const CIFAR10_PRESETS: Presets = {
  'SFR-on': {
    method: 'SFR-on',
    optimizer: cifarSgd(0.01),
    iterations: 1500,
    forgetFreq: 5,
    alpha0: 25,
    alphaSchedule: 'cosine',
    lrSchedule: 'cosine',
    maxNorm: 7,
    lambda: 0.5,
    gamma: 1,
    beta: 1,
    alternate: true,
    strictMask: false,
  },
  FT: { method: 'FT', optimizer: cifarSgd(0.01), epochs: 10, lrSchedule: 'cosine' },
  GA: { method: 'GA', optimizer: cifarSgd(1e-4), epochs: 9, lrSchedule: 'constant', clip: 0.1 },
  RL: { method: 'RL', optimizer: cifarSgd(0.003), epochs: 10, lrSchedule: 'cosine' },
  SalUn: { method: 'SalUn', threshold: 0.2, optimizer: cifarSgd(0.007), epochs: 10, lrSchedule: 'cosine' },
  BT: { method: 'BT', tau: 1, optimizer: cifarSgd(0.02), epochs: 10, lrSchedule: 'cosine' },
  // the commented CIFAR10 block of scrub.py: SGD 8e-5, 6 epochs, cosine over the epochs
  SCRUB: { method: 'SCRUB', msteps: 2, T: 4, gamma: 0.99, alpha: 0.001, optimizer: cifarSgd(8e-5), epochs: 6, lrSchedule: 'cosine' },
};

/** The authors' TinyImageNet / Swin-T settings (the model starts from ImageNet weights there). */
export const TINYIMAGENET_PRESETS: Presets = {
  'SFR-on': {
    method: 'SFR-on',
    optimizer: tinyAdamW(2e-5),
    iterations: 500,
    forgetFreq: 1,
    alpha0: 500,
    alphaSchedule: 'cosine',
    lrSchedule: 'cosine',
    maxNorm: 7,
    lambda: 0.6,
    gamma: 1,
    beta: 1,
    alternate: true,
    strictMask: false,
  },
  FT: { method: 'FT', optimizer: tinyAdamW(1e-4), epochs: 1, lrSchedule: 'cosine' },
  GA: { method: 'GA', optimizer: tinyAdamW(1e-6), epochs: 9, lrSchedule: 'constant', clip: 0.1 },
  RL: { method: 'RL', optimizer: tinyAdamW(1e-4), epochs: 1, lrSchedule: 'cosine' },
  SalUn: { method: 'SalUn', threshold: 0.5, optimizer: tinyAdamW(1e-4), epochs: 1, lrSchedule: 'cosine' },
  BT: { method: 'BT', tau: 1, optimizer: tinyAdamW(1e-4), epochs: 1, lrSchedule: 'cosine' },
  // the active block of scrub.py
  SCRUB: { method: 'SCRUB', msteps: 2, T: 4, gamma: 0.99, alpha: 0.001, optimizer: tinyAdamW(1e-4), epochs: 1, lrSchedule: 'cosine' },
};

/**
 * The MNIST demo's presets (small ResNet-18, width 8, 14x14 input, 5,000 training images): the CIFAR-10
 * settings with the unlearning budget scaled so each method sees one or two passes over its data (the
 * CIFAR schedules, 10 epochs over 45k images, would take hours on a CPU). GA's lr is 1e-3: at 1e-4 with
 * clip 0.1 it barely moves this model in 20 steps. SFR-on runs 80 iterations.
 */
export const MNIST_PRESETS: Presets = {
  'SFR-on': { ...(CIFAR10_PRESETS['SFR-on'] as SfrOnConfig), iterations: 80 },
  FT: { ...CIFAR10_PRESETS.FT, epochs: 2 },
  GA: { ...CIFAR10_PRESETS.GA, epochs: 5, optimizer: cifarSgd(1e-3) },
  RL: { ...CIFAR10_PRESETS.RL, epochs: 2 },
  SalUn: { ...CIFAR10_PRESETS.SalUn, epochs: 2 },
  BT: { ...CIFAR10_PRESETS.BT, epochs: 2 },
  SCRUB: { ...CIFAR10_PRESETS.SCRUB, epochs: 3 },
};

/**
 * A small Swin on 2,500 MNIST images (CPU runs): the TinyImageNet / Swin-T settings unchanged (AdamW,
 * the authors' learning rates, epochs, λ, α0) except SFR-on's iterations, 500 -> 30 (on a shared
 * 2-core CPU a Swin step takes seconds).
 */
export const SWIN_MNIST_PRESETS: Presets = {
  ...TINYIMAGENET_PRESETS,
  'SFR-on': { ...(TINYIMAGENET_PRESETS['SFR-on'] as SfrOnConfig), iterations: 30 },
};

export const PRESETS = { mnist: MNIST_PRESETS, cifar10: CIFAR10_PRESETS, tinyimagenet: TINYIMAGENET_PRESETS, 'swin-mnist': SWIN_MNIST_PRESETS } as const;
export type PresetName = keyof typeof PRESETS;
