// Every device-portable check, one list: test/portable.test.ts runs it on Dawn in Node and
// test/browser.test.ts in headless Chromium. A kernel's checks live in their own file here
// (exporting a Check[]) and are added to ALL_CHECKS with one line.
import type { Check } from './checks.js';
import { CHECKS as CORE } from './checks.js';
import { NORM_CHECKS } from './norm.js';

export type { Check };
export const ALL_CHECKS: Check[] = [...CORE, ...NORM_CHECKS];
