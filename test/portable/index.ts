// Every device-portable check, one list: test/portable.test.ts runs it on Dawn in Node and
// test/browser.test.ts in headless Chromium, both through harness.ts's runCheck. A kernel's checks
// live in their own file here (exporting a Check[]) and are added to ALL_CHECKS with one line.
import type { Check } from './harness.js';
import { CHECKS as CORE } from './checks.js';
import { ELEMENTWISE_CHECKS } from './elementwise.js';
import { SHAPE_CHECKS } from './shape.js';
import { GATHER_CHECKS } from './gather.js';
import { SOFTMAX_CHECKS } from './softmax.js';
import { DROPOUT_CHECKS } from './dropout.js';
import { COMPOSITE_CHECKS } from './composite.js';
import { POOL_CHECKS } from './pool.js';
import { NORM_CHECKS } from './norm.js';
import { WINDOW_CHECKS } from './window.js';
import { ATTENTION_CHECKS } from './attention.js';
import { GEMM_CHECKS } from './gemm.js';
import { UPSAMPLE_CHECKS } from './upsample.js';
import { F16_CHECKS } from './f16.js';

export type { Check };
export const ALL_CHECKS: Check[] = [
  ...CORE,
  ...ELEMENTWISE_CHECKS,
  ...SHAPE_CHECKS,
  ...GATHER_CHECKS,
  ...SOFTMAX_CHECKS,
  ...DROPOUT_CHECKS,
  ...COMPOSITE_CHECKS,
  ...POOL_CHECKS,
  ...NORM_CHECKS,
  ...WINDOW_CHECKS,
  ...ATTENTION_CHECKS,
  ...GEMM_CHECKS,
  ...UPSAMPLE_CHECKS,
  ...F16_CHECKS,
];
