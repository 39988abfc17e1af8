#!/usr/bin/env python3
"""Writes the small image fixtures of test/data-jpeg.test.ts: JPEGs saved by PIL at several qualities
and chroma subsamplings (4:4:4, 4:2:2, 4:2:0, greyscale, progressive, odd sizes), a few PNGs, plus the
pixels PIL decodes from each file (test/fixtures/images/pil_pixels.json). Also a CMYK JPEG (for the
"unsupported" error). Deterministic: fixed numpy seed. Run: /usr/bin/python3 scripts/make_image_fixtures.py
"""
import base64
import io
import json
import os

import numpy as np
from PIL import Image, features

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'images')


def picture(h, w, seed):
    """A gradient with coloured edges and noise, so that IDCT, chroma upsampling and edges all matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) % 7 * 36], axis=-1)
    base[(x // 4 + y // 3) % 2 == 1] = base[(x // 4 + y // 3) % 2 == 1][..., ::-1]
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    rgb = picture(13, 19, 1)
    big = picture(32, 32, 2)
    odd = picture(17, 33, 3)
    y, x = np.mgrid[0:5, 0:4]
    smooth = np.stack([60 + 20 * c + 10 * y + 5 * x for c in range(3)], axis=-1).astype(np.uint8)
    jpegs = {
        'smooth-5x4.jpg': (smooth, dict(quality=100, subsampling=0)),
        'smooth-grey-5x4.jpg': (smooth[..., 2], dict(quality=90)),
        'q95-444.jpg': (rgb, dict(quality=95, subsampling=0)),
        'q75-420.jpg': (rgb, dict(quality=75, subsampling=2)),
        'q50-422.jpg': (odd, dict(quality=50, subsampling=1)),
        'q90-420-32x32.jpg': (big, dict(quality=90, subsampling=2)),
        'q85-grey.jpg': (rgb[..., 1], dict(quality=85)),
        'q80-420-progressive.jpg': (odd, dict(quality=80, subsampling=2, progressive=True)),
        'q70-grey-progressive.jpg': (big[..., 0], dict(quality=70, progressive=True)),
        'q60-444-optimized.jpg': (big, dict(quality=60, subsampling=0, optimize=True)),
    }
    pngs = {
        'rgb.png': Image.fromarray(rgb),
        'grey.png': Image.fromarray(rgb[..., 0]),
        'palette.png': Image.fromarray(rgb).quantize(16),
        'rgba.png': Image.fromarray(np.concatenate([rgb, rgb[..., :1]], axis=-1), 'RGBA'),
    }
    expected = {'pil': Image.__version__, 'libjpeg_turbo': features.version('libjpeg_turbo'), 'files': {}}
    for name, (arr, kw) in jpegs.items():
        Image.fromarray(arr).save(os.path.join(OUT, name), 'JPEG', **kw)
    for name, im in pngs.items():
        im.save(os.path.join(OUT, name), 'PNG')
    for name in sorted(list(jpegs) + list(pngs)):
        im = Image.open(os.path.join(OUT, name))
        im.load()
        # what torchvision's loader does for colour images; greyscale stays 1 channel here
        mode = 'L' if im.mode == 'L' else 'RGB'
        px = np.asarray(im.convert(mode))
        expected['files'][name] = {
            'mode': mode, 'width': im.width, 'height': im.height,
            'pixels': base64.b64encode(px.tobytes()).decode('ascii'),
        }
    Image.fromarray(rgb).convert('CMYK').save(os.path.join(OUT, 'cmyk.jpg'), 'JPEG', quality=80)
    with open(os.path.join(OUT, 'pil_pixels.json'), 'w') as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
