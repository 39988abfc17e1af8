"""Summary of one scripts/gpu-run.sh call: device, driver, date, and the speed ratios ours / PyTorch
on the same card (> 1 = we are faster), from the JSON files that call wrote into OUT:
  matmul_f32      PyTorch f32 (TF32 off) time / ours f32 time, square matmul (largest size measured)
  matmul_f16      PyTorch f16 time / ours f16 (f32 accumulation) time, same size
  resnet18_f32    PyTorch f32 (TF32 off) step / ours f32 step, CIFAR ResNet-18 at batch 128
  resnet18_mixed  PyTorch bf16-autocast step / ours mixed-precision step (autocast + GradScaler), batch 128
  sfron_e2e       PyTorch SFR-on seconds / ours, same checkpoints, split, data and iteration count
                  (Fisher masks + iterations; evaluation not included on either side)
A ratio whose inputs are missing is null, with the reason under "missing". Writes OUT/summary.json
(commit it as bench/results/gpu/summary.json).
Usage: python3 scripts/gpu_summary.py OUT"""
import json, os, sys, time

out = sys.argv[1]
missing = {}


def load(name):
    path = os.path.join(out, name)
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # a step of the run failed: say which file is missing
        missing[name] = str(e)
        return None


def ratio(key, torch_time, our_time):
    if torch_time is None or our_time is None or not our_time > 0:
        missing.setdefault(key, 'an input of this ratio was not measured')
        return None
    return torch_time / our_time


amp = load('amp.json')
amp_t = load('amp_torch.json')
res = load('resnet.json')
res_t = load('resnet_torch.json')
ours_u = load('results.json')
torch_u = load('torch_unlearn.json')

# matmul: the largest square size both sides measured
mm_ours = {r['M']: r for r in (amp or {}).get('results', []) if r.get('kind') == 'matmul' and r['M'] == r['K'] == r['N']}
mm_torch = {}
for r in (amp_t or {}).get('matmul', []):
    mm_torch.setdefault(r['n'], {})[r['dtype']] = r['ms']
sizes = sorted(set(mm_ours) & set(mm_torch))
n = sizes[-1] if sizes else None
matmul_f32 = ratio('matmul_f32', mm_torch[n].get('float32') if n else None, mm_ours[n]['f32Ms'] if n else None)
matmul_f16 = ratio('matmul_f16', mm_torch[n].get('float16') if n else None, mm_ours[n]['f16Ms'] if n else None)

# ResNet-18 at batch 128
ours_f32 = next((r['msPerStep'] for r in (res or {}).get('results', []) if r['batch'] == 128 and r['width'] == 64), None)
torch_f32 = next((r['msPerStep'] for r in (res_t or {}).get('results', []) if r['batch'] == 128 and not r['tf32']), None)
ours_mixed = next((r['mixedMs'] for r in (amp or {}).get('results', []) if r.get('kind') == 'train-step' and 'ResNet' in r['name']), None)
torch_mixed = (amp_t or {}).get('resnet_bf16', {}).get('msPerStep')
resnet18_f32 = ratio('resnet18_f32', torch_f32, ours_f32)
resnet18_mixed = ratio('resnet18_mixed', torch_mixed, ours_mixed)

# SFR-on end to end (method time)
ours_s = next((r['rteMinutes'] * 60 for r in (ours_u or {}).get('rows', []) if r.get('method') == 'SFR-on'), None)
torch_s = next((r['seconds'] for r in (torch_u or {}).get('rows', []) if r.get('method') == 'SFR-on'), None)
sfron_e2e = ratio('sfron_e2e', torch_s, ours_s)

device, driver = None, None
try:
    with open(os.path.join(out, 'device.txt')) as f:
        line = f.read().strip().splitlines()[-1]  # "name, driver_version, memory.total"
    device, driver = [s.strip() for s in line.split(',')[:2]]
except Exception as e:
    missing['device.txt'] = str(e)

summary = {
    'device': device,
    'driver': driver,
    'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
    'matmul_f32': matmul_f32,
    'matmul_f16': matmul_f16,
    'resnet18_f32': resnet18_f32,
    'resnet18_mixed': resnet18_mixed,
    'sfron_e2e': sfron_e2e,
    'detail': {
        'matmul_size': n,
        'ms': {'matmul_f32': [mm_ours[n]['f32Ms'] if n else None, mm_torch[n].get('float32') if n else None],
               'matmul_f16': [mm_ours[n]['f16Ms'] if n else None, mm_torch[n].get('float16') if n else None],
               'resnet18_f32': [ours_f32, torch_f32], 'resnet18_mixed': [ours_mixed, torch_mixed]},
        'seconds': {'sfron_e2e': [ours_s, torch_s]},
        'order': '[ours, pytorch]',
        'note': 'ours mixed = autocast (linear/matmul f16) + GradScaler; its convolutions stay f32',
    },
    'missing': missing,
}
with open(os.path.join(out, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
print(json.dumps({k: summary[k] for k in ('device', 'driver', 'matmul_f32', 'matmul_f16', 'resnet18_f32', 'resnet18_mixed', 'sfron_e2e')}, indent=2))
if missing:
    print('missing:', json.dumps(missing))
