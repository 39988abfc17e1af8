// Bundle the diffusion demo's original and RT: copy them from a finished run folder into
// assets/diffusion-demo with their sha256 and where they were trained, so that `diffusion-demo` on a
// fresh clone skips the two ~21-minute pretrainings (the run checks the sha256 and the settings' hash
// in the file name). How the committed ones were made:
//   npx tsx src/cli/main.ts diffusion-demo --no-bundled --out runs/unet-bundle
//   npx tsx scripts/bundle-diffusion-demo.ts --run runs/unet-bundle --device "llvmpipe, 2 cores"
// Options: --config FILE (settings over the demo's default, as diffusion-demo --config), --out DIR
// (default assets/diffusion-demo); --device, --date and --command (recorded with the files, over what
// the run recorded).
import { readFileSync } from 'node:fs';
import { bundleTrainedModels, resolveDemoConfig } from '../src/cli/diffusion-demo.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? undefined : args[i + 1];
};
const run = opt('run');
if (!run) {
  console.error('usage: tsx scripts/bundle-diffusion-demo.ts --run DIR [--config FILE] [--out DIR] [--device TEXT] [--date YYYY-MM-DD] [--command TEXT]');
  process.exit(2);
}
const cfgPath = opt('config');
const cfg = resolveDemoConfig(cfgPath ? JSON.parse(readFileSync(cfgPath, 'utf8')) : undefined);
const files = await bundleTrainedModels(run, opt('out') ?? 'assets/diffusion-demo', cfg, {
  device: opt('device'),
  date: opt('date'),
  command: opt('command') ?? 'npx tsx src/cli/main.ts diffusion-demo --no-bundled',
});
for (const f of files) console.log(`wrote ${f}`);
