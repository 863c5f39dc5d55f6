# Copyright (c) samref contributors. All rights reserved.
"""Convert a FocSAM checkpoint to this toolbox's FocSAM model.

    python tools/model_converters/focsam2samref.py SRC DST \\
        [--config configs/focsam/focsam_vit-h.py]

``SRC`` is FocSAM's release (``work_dirs/focsam/focsam_vit_huge_eval/
iter_160000.pth`` of its README), an mmengine checkpoint whose state dict
holds ``backbone.*`` (SAM's image encoder), ``neck.*`` (the prompt
encoder), ``decode_head.*`` (the stage-1 mask decoder) and
``refine_head.*`` (the focus refiner). Every key is renamed to ours; the
result must load strictly into ``--config``'s model, otherwise nothing is
written and every key that was not mapped, is missing, is left over or has
another shape is listed. The file is read under the toolbox's loading
policy, so it cannot run code; a release that holds numpy values or
message-hub history buffers (an mmengine training checkpoint) converts with
``--drop-foreign-objects``, which keeps its tensors and plain data.
Evaluate the converted release with the colour order FocSAM used::

    python tools/test.py configs/focsam/focsam_vit-h_bgr-input.py DST \\
        --datasets grabcut berkeley davis sbd
"""
import argparse
import os
import os.path as osp
import re
import tempfile
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from samref.utils import checkpoint_key_report, load_checkpoint_file

DEFAULT_CONFIG = osp.join(
    osp.dirname(osp.abspath(__file__)), '..', '..', 'configs', 'focsam',
    'focsam_vit-h.py')

# FocSAM's module prefixes of SAM's parts; the names below them are
# segment_anything's, as in ours.
SAM_PREFIXES = (
    ('backbone.', 'image_encoder.'),
    ('neck.pos_embed_layer.', 'prompt_encoder.pe_layer.'),
    ('neck.point_embeds.', 'prompt_encoder.point_embeddings.'),
    ('neck.', 'prompt_encoder.'),
    ('decode_head.', 'mask_decoder.'),
)


def _params(theirs: str, ours: str, names=('weight', 'bias')) -> dict:
    return {f'{theirs}.{name}': f'{ours}.{name}' for name in names}


def _attention(theirs: str, ours: str) -> dict:
    renames = {}
    for their_proj, our_proj in (('q_proj', 'q_proj'), ('k_proj', 'k_proj'),
                                 ('v_proj', 'v_proj'), ('proj', 'out_proj')):
        renames.update(_params(f'{theirs}.{their_proj}', f'{ours}.{our_proj}'))
    return renames


# refine_head.<key> -> refiner.<key>, outside the blocks.
REFINER_KEYS = {
    **_params('embed_proj', 'input_proj'),
    **_params('token_proj', 'token_proj'),
}
# refine_head.blocks.<i>.<key> -> refiner.blocks.<i>.<key>.
# yapf: disable
REFINER_BLOCK_KEYS = {
    # img2cls: the token reads the window.
    **_params('img2cls.norm_q', 'token_update.norm_token'),
    **_params('img2cls.norm_kv', 'token_update.norm_window'),
    **_params('img2cls.norm', 'token_update.norm_mlp'),
    **_attention('img2cls.attn', 'token_update.attn'),
    'img2cls.gamma1': 'token_update.gamma_attn',
    'img2cls.gamma2': 'token_update.gamma_mlp',
    **_params('img2cls.mlp.0', 'token_update.mlp.0'),
    **_params('img2cls.mlp.2', 'token_update.mlp.2'),
    # cls2img: the window reads the token.
    **_params('cls2img.cls_proj.0', 'window_update.token_proj.0'),
    **_params('cls2img.cls_proj.1', 'window_update.token_proj.1'),
    **_attention('cls2img.attn', 'window_update.attn'),
    **_params('cls2img.norm1', 'window_update.norm_attn'),
    **_params('cls2img.norm2', 'window_update.norm_conv'),
    **{
        f'cls2img.relu1.{name}': f'window_update.dyrelu.{name}'
        for name in ('pixel_scale', 'pixel_bias', 'channel_scale',
                     'channel_bias')
    },
    **_params('cls2img.relu1.pixel_mlp.0', 'window_update.dyrelu.pixel_mlp.0'),
    **_params('cls2img.relu1.pixel_mlp.2', 'window_update.dyrelu.pixel_mlp.2'),
    **_params('cls2img.relu1.channel_mlp.0',
              'window_update.dyrelu.channel_mlp.0'),
    **_params('cls2img.relu1.channel_mlp.2',
              'window_update.dyrelu.channel_mlp.2'),
    **_params('cls2img.conv2.dcn_offset',
              'window_update.deform_conv.conv_offset'),
    'cls2img.conv2.dcn.weight': 'window_update.deform_conv.weight',
    'cls2img.gamma1': 'window_update.gamma_attn',
    'cls2img.gamma2': 'window_update.gamma_conv',
    **_params('cls_scale_proj', 'coverage_scale'),
}
# yapf: enable
BLOCK_KEY = re.compile(r'^refine_head\.blocks\.(\d+)\.(.+)$')


def convert_key(key: str) -> Optional[str]:
    """Our name of a FocSAM state-dict key, None when it has none."""
    block = BLOCK_KEY.match(key)
    if block:
        ours = REFINER_BLOCK_KEYS.get(block.group(2))
        return None if ours is None else \
            f'refiner.blocks.{block.group(1)}.{ours}'
    if key.startswith('refine_head.'):
        ours = REFINER_KEYS.get(key[len('refine_head.'):])
        return None if ours is None else f'refiner.{ours}'
    for theirs, ours in SAM_PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


def convert_state_dict(
    state_dict: Mapping[str, torch.Tensor]
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Rename a FocSAM state dict.

    Args:
        state_dict (Mapping[str, Tensor]): FocSAM's state dict (``module.``
            prefixes of wrapped models are ignored).

    Returns:
        tuple: The renamed state dict and the sorted keys that have no
        counterpart.
    """
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    unmapped = []
    for key, value in state_dict.items():
        key = re.sub(r'^module\.', '', key)
        ours = convert_key(key)
        if ours is None:
            unmapped.append(key)
        else:
            converted[ours] = value
    return converted, sorted(unmapped)


def build_model(config: str) -> torch.nn.Module:
    """The FocSAM model of a config, without memory (meta tensors)."""
    cfg = Config.fromfile(config)
    if cfg.model.get('type') != 'FocSAM':
        raise SystemExit(f'{config} is not a FocSAM config (model type '
                         f'{cfg.model.get("type")!r})')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def problems(model: torch.nn.Module, converted: Mapping[str, torch.Tensor],
             unmapped: List[str]) -> Dict[str, List[str]]:
    """Everything that prevents a strict load, by kind (empty when none)."""
    report = checkpoint_key_report(model, converted)
    found = {
        'not mapped (FocSAM keys without a counterpart)':
        unmapped,
        'missing (model keys the checkpoint lacks)':
        report['new'],
        'left over (converted keys the model lacks)':
        report['unexpected'],
        'shape mismatch': [
            f'{key}: checkpoint {tuple(converted[key].shape)}, model '
            f'{tuple(model.state_dict()[key].shape)}'
            for key in report['mismatched']
        ],
    }
    return {kind: keys for kind, keys in found.items() if keys}


def convert(src: str,
            dst: str,
            config: str = DEFAULT_CONFIG,
            drop_foreign_objects: bool = False) -> int:
    """Convert ``src`` into ``dst`` (written only when it loads strictly).

    Args:
        src (str): FocSAM checkpoint.
        dst (str): Output file.
        config (str): The FocSAM config it must load into.
        drop_foreign_objects (bool): Replace objects beyond tensors and
            plain data by inert placeholders instead of refusing the file
            (see :func:`samref.utils.load_checkpoint_file`). Defaults to
            False.

    Returns:
        int: The number of tensors written.

    Raises:
        SystemExit: The file holds no state dict or does not fit the model;
            the message lists every offending key.
    """
    checkpoint = load_checkpoint_file(
        src, map_location='cpu', drop_foreign_objects=drop_foreign_objects)
    state_dict = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict) or not state_dict:
        raise SystemExit(f'{src} holds no state dict')
    converted, unmapped = convert_state_dict(state_dict)
    model = build_model(config)
    found = problems(model, converted, unmapped)
    if found:
        lines = [
            f'{src} does not load strictly into {config}; nothing '
            f'written:'
        ]
        for kind, keys in found.items():
            lines.append(f'  {kind} ({len(keys)}):')
            lines += [f'    {key}' for key in keys]
        raise SystemExit('\n'.join(lines))
    model.load_state_dict(converted, strict=True, assign=True)
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(handle)
    try:
        torch.save(
            dict(
                state_dict=converted,
                meta=dict(converted_from=osp.basename(src))), tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return len(converted)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Convert a FocSAM checkpoint to samref')
    parser.add_argument('src', help='FocSAM checkpoint (e.g. iter_160000.pth)')
    parser.add_argument('dst', help='output checkpoint')
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help='FocSAM config the result must load into strictly '
        '(default: configs/focsam/focsam_vit-h.py)')
    parser.add_argument(
        '--drop-foreign-objects',
        action='store_true',
        help='read a checkpoint that holds numpy values or other objects '
        'beyond tensors and plain data, each replaced by an inert '
        'placeholder (refused without it)')
    args = parser.parse_args(argv)
    count = convert(args.src, args.dst, args.config, args.drop_foreign_objects)
    print(f'{count} tensors written to {args.dst}; they load strictly into '
          f'{args.config}')
    return count


if __name__ == '__main__':
    main()
