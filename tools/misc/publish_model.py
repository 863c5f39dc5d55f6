# Copyright (c) samref contributors. All rights reserved.
"""Prepare a trained checkpoint for release.

    python tools/misc/publish_model.py IN_FILE OUT_FILE

Reads ``IN_FILE`` under the toolbox's loading policy, drops the optimizer
state and writes ``OUT_FILE`` with the first 8 hex digits of the written
file's SHA-256 added to its name (``samref_vit-b.pth`` becomes
``samref_vit-b-1a2b3c4d.pth``), as OpenMMLab model zoos name their files.
The toolbox's loaders verify that hash, so a corrupt or altered copy of
the release is refused. mmseg 1.x's own ``tools/misc/publish_model.py``
names its output after the hash of its *input*, which no loader can
verify: publish with this script.
"""
import argparse
import hashlib
import os
import os.path as osp
import tempfile
from typing import List, Optional

import torch

from samref.utils import load_checkpoint_file


def sha256_of(filename: str) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(filename, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def publish(in_file: str, out_file: str) -> str:
    """Write the release of a checkpoint.

    Args:
        in_file (str): A checkpoint of this toolbox (or any that
            :func:`samref.utils.load_checkpoint_file` reads).
        out_file (str): The release's name before the hash, ending in
            ``.pth``.

    Returns:
        str: The file written, ``<out_file stem>-<hash>.pth``.
    """
    if not out_file.endswith('.pth'):
        raise SystemExit(f'{out_file}: the release must be a .pth file')
    checkpoint = load_checkpoint_file(in_file, map_location='cpu')
    if isinstance(checkpoint, dict):
        checkpoint.pop('optimizer', None)
    folder = osp.dirname(osp.abspath(out_file))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(handle)
    try:
        torch.save(checkpoint, tmp)
        final = f'{out_file[:-len(".pth")]}-{sha256_of(tmp)[:8]}.pth'
        os.replace(tmp, final)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return final


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(
        description='Prepare a checkpoint for release')
    parser.add_argument('in_file', help='input checkpoint')
    parser.add_argument(
        'out_file', help='output name (.pth); the hash is added to it')
    args = parser.parse_args(argv)
    final = publish(args.in_file, args.out_file)
    print(f'published {final}')
    return final


if __name__ == '__main__':
    main()
