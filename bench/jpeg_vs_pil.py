#!/usr/bin/env python3
"""PIL's decoded pixels for every .jpg/.jpeg in a .tar/.tar.gz archive, for bench/jpeg-vs-pil.ts.
Writes OUT.json ({"pil", "libjpeg_turbo", "images": [[name, width, height], ...]}, archive names
sorted by code point) and OUT.bin (each image's RGB bytes, HWC, in that order; greyscale files are
converted to RGB as torchvision's loader does). Usage: jpeg_vs_pil.py ARCHIVE OUT
"""
import json
import sys
import tarfile

from PIL import Image, features


def main():
    archive, out = sys.argv[1], sys.argv[2]
    images = []
    with tarfile.open(archive) as tar, open(out + '.bin', 'wb') as bin_file:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(('.jpg', '.jpeg'))), key=lambda m: m.name)
        for m in members:
            im = Image.open(tar.extractfile(m))
            rgb = im.convert('RGB')
            bin_file.write(rgb.tobytes())
            images.append([m.name[2:] if m.name.startswith('./') else m.name, im.width, im.height])
    with open(out + '.json', 'w') as f:
        json.dump({'pil': Image.__version__, 'libjpeg_turbo': features.version('libjpeg_turbo'), 'images': images}, f)


if __name__ == '__main__':
    main()
