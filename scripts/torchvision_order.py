#!/usr/bin/env python3
"""Prints, as JSON, the classes and the sample order that torchvision's ImageFolder gives for a
directory: {"torchvision": version, "classes": [...], "samples": [[relative path, label], ...]}.
Used by test/data-image-folder.test.ts to check that our ImageFolder order is torchvision's.
Only lists files (ImageFolder opens no image before __getitem__). Usage: torchvision_order.py DIR
"""
import json
import os
import sys

import torchvision
from torchvision.datasets import ImageFolder


def main():
    root = sys.argv[1]
    ds = ImageFolder(root)
    out = {
        'torchvision': torchvision.__version__,
        'classes': ds.classes,
        'samples': [[os.path.relpath(p, root).replace(os.sep, '/'), label] for p, label in ds.samples],
    }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == '__main__':
    main()
