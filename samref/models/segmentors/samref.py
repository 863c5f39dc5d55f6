# Copyright (c) samref contributors. All rights reserved.
import math
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ...utils.timer import timed
from ..utils import (box_prompt_map, click_disk_maps, has_fast_bfloat16,
                     select_patch_box, whole_input_box)
from .interaction import Interaction
from .sam import SAM, resize_logits, upsample_to


@MODELS.register_module()
class SAMRef(SAM):
    """SAM-REF: SAM followed by the GlobalDiff and PatchDiff refiners.

    Per click, top to bottom:

    1. clicks -> SAM's prompt encoder and mask decoder -> coarse logits
       ``Mc`` (``B x 1 x S/4 x S/4``; resized to it when SAM's encoder has
       another patch size than 16, and the fed-back logits resized to
       SAM's mask input);
    2. clicks as disks (+ the box prompt, filled, with ``box_channel``) +
       ``Mc`` -> dense prompt map ``P`` -> GlobalDiff
       (with the image branch and embeddings cached per image) -> refined
       logits ``Mr`` and error map ``Me``;
    3. Dynamic Patch Selector: if the area of ``Me > 0`` grew since the
       previous click, the previous mask is kept and only the PatchDiff
       window changes (branch ``'patch'``); otherwise GlobalDiff's whole
       output is taken (branch ``'global'``);
    4. PatchDiff refines the window around the last click and pastes it
       back, at the input resolution, without changing anything outside.

    A box prompt (``boxes`` of :meth:`interact`) always reaches SAM's prompt
    encoder; the refiners see it only with ``box_channel``. An interaction
    with a box and no click (the box-first protocol's first) takes
    GlobalDiff's output: PatchDiff's window needs a click.

    Each stage has a switch (the ablations of Table 3). With the selector
    off and PatchDiff on, PatchDiff refines GlobalDiff's output after every
    click. The outputs of :meth:`interact` carry the branch taken and the
    seconds spent per stage.

    Args:
        image_encoder (dict): SAM's image encoder.
        prompt_encoder (dict): SAM's prompt encoder.
        mask_decoder (dict): SAM's mask decoder.
        global_refiner (dict): ``GlobalDiffRefiner`` config.
        patch_refiner (dict): ``PatchDiffRefiner`` config.
        use_global (bool): Run GlobalDiff. Defaults to True.
        use_patch (bool): Run PatchDiff. Defaults to True.
        use_selector (bool): Run the Dynamic Patch Selector.
            Defaults to True.
        disk_radius (float): Radius of GlobalDiff's click disks, in pixels of
            the ``S/4`` map (2 = 8 input pixels). Defaults to 2.
        patch_expand_ratio (float): Expansion of the PatchDiff window.
            Defaults to 1.4.
        patch_min_size (float): Smallest side of the window, in pixels of
            the ``S/4`` map (16 = 64 input pixels). Defaults to 16.
        box_channel (bool): Add the box prompt to both refiners' prompt
            maps as a filled box (1 at the pixels whose centres lie in the
            box, 0 elsewhere and for an object without a box), between the
            click disks and the coarse logits; the refiners'
            ``prompt_channels`` become 4 (set here when their configs leave
            it out). Defaults to False (the paper's three channels).
        refiner_dtype (str): ``'float32'``; ``'bfloat16'`` to run the
            refiners' convolutions in bfloat16 at inference (the cached
            image features stored in it, autocast per click; weights stay
            float32 and training is unaffected); or ``'auto'``: bfloat16
            where the device has bfloat16 units
            (:func:`~samref.models.utils.has_fast_bfloat16`: AMX or
            AVX512-BF16 CPUs, Ampere and later GPUs), float32 elsewhere,
            decided per call from the device the model is on. GlobalDiff
            runs about 2x faster on CPUs with AMX (Sapphire Rapids and
            later) and 1.6x on AVX512-BF16 ones (Zen 4); CPUs without
            bfloat16 units gain nothing. The refiners' last convolutions
            stay float32; masks differ from float32 in under 0.1 % of the
            pixels, so published-table comparisons use the default.
            Defaults to ``'float32'``.
        losses (dict, optional): Loss configs by term: ``decoder`` (SAM's
            coarse logits), ``global_error_dice``, ``global_error_bce``,
            ``global_refined``, ``patch_error_dice``, ``patch_error_bce`` and
            ``patch_refined`` (equation (3)), and the optional
            ``global_refined_dice`` and ``patch_refined_dice`` (mmseg's
            ``DiceLoss`` on the refined logits) and ``global_detail_bce``
            and ``patch_detail_bce`` (a sigmoid ``CrossEntropyLoss`` of the
            detail map against the object mask, everywhere: equation (3)
            reaches the detail map only where the error map opens it);
            absent terms are skipped.
        frozen_modules (Sequence[str]): Sub-modules that do not train.
        train_cfg (dict, optional): See :class:`SAM`.
        mask_output (str): SAM's mask token policy, see :class:`SAM`.
        data_preprocessor (dict, optional): See :class:`SAM`.
        init_cfg (dict, optional): Initialisation config.
    """

    loss_terms = dict(
        SAM.loss_terms,
        global_refiner=('global_error_dice', 'global_error_bce',
                        'global_refined', 'global_refined_dice',
                        'global_detail_bce'),
        patch_refiner=('patch_error_dice', 'patch_error_bce', 'patch_refined',
                       'patch_refined_dice', 'patch_detail_bce'))

    def __init__(self,
                 image_encoder: ConfigType,
                 prompt_encoder: ConfigType,
                 mask_decoder: ConfigType,
                 global_refiner: ConfigType,
                 patch_refiner: ConfigType,
                 use_global: bool = True,
                 use_patch: bool = True,
                 use_selector: bool = True,
                 disk_radius: float = 2.0,
                 patch_expand_ratio: float = 1.4,
                 patch_min_size: float = 16.0,
                 box_channel: bool = False,
                 refiner_dtype: str = 'float32',
                 losses: OptConfigType = None,
                 frozen_modules: Sequence[str] = (),
                 train_cfg: OptConfigType = None,
                 mask_output: str = 'single',
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            image_encoder=image_encoder,
            prompt_encoder=prompt_encoder,
            mask_decoder=mask_decoder,
            losses=losses,
            frozen_modules=frozen_modules,
            train_cfg=train_cfg,
            mask_output=mask_output,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if (use_patch or use_selector) and not use_global:
            raise ValueError('PatchDiff and the selector refine GlobalDiff: '
                             'use_patch and use_selector need use_global')
        if use_selector and not use_patch:
            raise ValueError('the Dynamic Patch Selector chooses PatchDiff: '
                             'use_selector needs use_patch')
        if refiner_dtype not in ('float32', 'bfloat16', 'auto'):
            raise ValueError('refiner_dtype must be float32, bfloat16 or '
                             f'auto, got {refiner_dtype!r}')
        self.refiner_dtype = refiner_dtype
        self.box_channel = box_channel
        refiners = dict(
            global_refiner=global_refiner, patch_refiner=patch_refiner)
        for name, cfg in refiners.items():
            channels = cfg.get('prompt_channels', 3 + box_channel)
            if channels != 3 + box_channel:
                raise ValueError(
                    f'{name}.prompt_channels={channels} does not match '
                    f'box_channel={box_channel} (3 channels without the box '
                    'channel, 4 with it)')
            setattr(self, name,
                    MODELS.build(dict(cfg, prompt_channels=channels)))
        batch_norms = [
            name for refiner in ('global_refiner', 'patch_refiner')
            for name, module in getattr(self, refiner).named_modules(
                prefix=refiner) if isinstance(module, _BatchNorm)
        ]
        if batch_norms:
            warnings.warn(
                'SAM-REF trains one sample per forward, so the batch norms '
                f'{batch_norms[:2]}... learn single-image statistics and test '
                "with running averages; use norm_cfg=dict(type="
                "'ChannelGroupNorm') in the refiners")
        self.use_global = use_global
        self.use_patch = use_patch
        self.use_selector = use_selector
        self.disk_radius = disk_radius
        self.patch_expand_ratio = patch_expand_ratio
        self.patch_min_size = patch_min_size
        self.map_size = self.input_size // 4
        self.freeze()

    def encode_image(
            self,
            inputs: Tensor,
            image_embeddings: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """SAM's embedding plus the refiners' click-independent features.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            image_embeddings (Tensor, optional): Stored encoder output.

        Returns:
            dict[str, Tensor]: ``image_embeddings``, ``inputs`` (for the
            PatchDiff crops), ``valid_size`` (``B x 2``, ``(h, w)`` of each
            unpadded image in pixels of the ``S/4`` maps) and
            ``global_image`` / ``global_embeddings`` (GlobalDiff's cached
            branch).
        """
        features = super().encode_image(inputs, image_embeddings)
        features['inputs'] = inputs
        features['valid_size'] = self.valid_map_size(inputs)
        if self.use_global:
            cached = self.global_refiner.image_features(
                inputs, features['image_embeddings'])
            dtype = self.inference_dtype
            features['global_image'] = cached['image'].to(dtype)
            features['global_embeddings'] = [
                e.to(dtype) for e in cached['embeddings']
            ]
        return features

    @property
    def inference_dtype(self) -> torch.dtype:
        """The refiners' compute dtype: ``refiner_dtype`` at inference
        (``'auto'`` resolved for the refiners' device), float32 in
        training."""
        if self.training or self.refiner_dtype == 'float32':
            return torch.float32
        if self.refiner_dtype == 'auto' and not has_fast_bfloat16(
                next(self.global_refiner.parameters()).device):
            return torch.float32
        return torch.bfloat16

    def run_refiner(self, refiner: torch.nn.Module, *args,
                    **kwargs) -> Dict[str, Tensor]:
        """Run a refiner in :attr:`inference_dtype`.

        In float32 the refiner runs in the caller's precision: under the
        optimizer wrapper's autocast (``--amp``) it trains in mixed
        precision like the rest of the model. With ``refiner_dtype=
        'bfloat16'`` at inference it runs autocast to bfloat16.

        Args:
            refiner (nn.Module): ``global_refiner`` or ``patch_refiner``.
            *args, **kwargs: Its inputs.

        Returns:
            dict[str, Tensor]: Its outputs, in float32.
        """
        dtype = self.inference_dtype
        if dtype == torch.float32:
            outputs = refiner(*args, **kwargs)
        else:
            device = next(refiner.parameters()).device
            with torch.autocast(device.type, dtype=dtype):
                outputs = refiner(*args, **kwargs)
        return {name: value.float() for name, value in outputs.items()}

    def valid_map_size(self, inputs: Tensor) -> Tensor:
        """``(h, w)`` of each unpadded image, in ``S/4`` map pixels.

        The padding is exactly zero after normalisation, and no 8-bit pixel
        normalises to zero in all channels with SAM's (fractional) mean, so
        the unpadded area is where the input is non-zero.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.

        Returns:
            Tensor: ``B x 2`` int64, on the CPU.
        """
        nonzero = inputs.ne(0).any(dim=1)
        sizes = []
        for dim in (2, 1):  # rows, then columns
            seen = nonzero.any(dim=dim)
            last = torch.where(seen,
                               torch.arange(seen.shape[1], device=seen.device),
                               -1).max(dim=1).values + 1
            sizes.append(torch.where(last > 0, last, self.input_size))
        return (-(-torch.stack(sizes, dim=1) // 4)).cpu()

    def interact(self,
                 image_features: Dict[str, Tensor],
                 points: Tensor,
                 labels: Tensor,
                 previous: Optional[Interaction] = None,
                 boxes: Optional[Tensor] = None) -> Interaction:
        """One click through SAM, GlobalDiff, the selector and PatchDiff.

        Args:
            image_features (dict[str, Tensor]): From :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` clicks, input frame; the last
                valid click of each row is the newest.
            labels (Tensor): ``B x N`` labels (1, 0, -1 padding).
            previous (Interaction, optional): The previous click's.
            boxes (Tensor, optional): ``B x 4`` box prompts, input frame.

        Returns:
            Interaction: ``logits`` (``B x 1 x S/4 x S/4``, fed back next
            click), ``pred_logits`` (``B x 1 x S x S``, the prediction with
            the PatchDiff windows at full resolution) and
            ``patch_refinement`` when PatchDiff ran, ``coarse`` (SAM's
            logits), ``global_refinement``, ``branch`` (``'sam'``,
            ``'global'`` or ``'patch'`` per sample), ``state`` and
            ``stage_times``.
        """
        times: Dict[str, float] = {}
        device = points.device
        timing = self.time_stages
        prev_logits = None if previous is None else previous.logits
        with timed(times, 'sam', device, timing):
            sam_prev = None if prev_logits is None else resize_logits(
                prev_logits, self.prompt_encoder.mask_input_size)
            sam = self.predict_mask(image_features, points, labels, sam_prev,
                                    boxes)
        # The refiners work at S/4 whatever SAM's token grid: an encoder
        # with 8-pixel patches gives S/2 logits, averaged down here.
        coarse = resize_logits(sam.logits, (self.map_size, ) * 2)
        outputs = Interaction(
            logits=coarse,
            iou_pred=sam.iou_pred,
            coarse=coarse,
            branch=['sam'] * len(coarse),
            stage_times=times)
        if not self.use_global:
            return outputs
        with timed(times, 'global_diff', device, timing):
            whole = whole_input_box(len(points), self.input_size, points)
            prompts = [
                click_disk_maps(points, labels, self.map_size, whole,
                                self.disk_radius)
            ]
            if self.box_channel:
                prompts.append(
                    coarse.new_zeros(coarse.shape) if boxes is
                    None else box_prompt_map(boxes, self.map_size, whole))
            prompts.append(coarse)
            valid_sizes = image_features['valid_size']  # on the CPU
            # One window for the batch: the union of the images.
            valid_size = tuple(valid_sizes.max(dim=0).values.tolist())
            global_out = self.run_refiner(
                self.global_refiner,
                dict(
                    image=image_features['global_image'],
                    embeddings=image_features['global_embeddings']),
                torch.cat(prompts, dim=1), valid_size)
        outputs.global_refinement = global_out
        outputs.logits = global_out['logits']
        error_area = (global_out['error'] > 0).flatten(1).sum(1)
        outputs.state = dict(error_area=error_area)
        previous_area = None if previous is None else \
            previous.state.get('error_area')
        with timed(times, 'selector', device, timing):
            if points.shape[1] == 0:  # a box alone: no click to refine at
                selected = [False] * len(points)
            elif self.use_patch and (self.training or not self.use_selector):
                # Training refines every window so that PatchDiff learns.
                selected = [True] * len(points)
            elif self.use_selector and previous_area is not None:
                selected = (error_area > previous_area).tolist()
            else:
                selected = [False] * len(points)
        outputs.branch = ['patch' if s else 'global' for s in selected]
        if any(selected):
            with timed(times, 'patch_diff', device, timing):
                # The selector keeps the previous mask outside the window.
                base = torch.where(
                    torch.tensor(selected, device=device)[:, None, None,
                                                          None],
                    prev_logits, outputs.logits) \
                    if self.use_selector and not self.training \
                    else outputs.logits
                (outputs.logits, outputs.pred_logits,
                 outputs.patch_refinement) = self.refine_windows(
                     image_features['inputs'], global_out, base, points,
                     labels, prev_logits,
                     [i for i, s in enumerate(selected) if s], valid_sizes,
                     boxes)
        return outputs

    def refine_windows(self,
                       inputs: Tensor,
                       global_out: Dict[str, Tensor],
                       base: Tensor,
                       points: Tensor,
                       labels: Tensor,
                       prev_logits: Optional[Tensor],
                       selected: List[int],
                       valid_sizes: Tensor,
                       prompt_boxes: Optional[Tensor] = None) -> tuple:
        """Run PatchDiff on the selected samples and paste the windows.

        The windows are chosen on the host (:func:`select_patch_box`), from
        the masks and last clicks brought over in one transfer.

        Args:
            inputs (Tensor): Normalised, padded images.
            global_out (dict[str, Tensor]): GlobalDiff's outputs.
            base (Tensor): ``B x 1 x S/4 x S/4`` logits to paste into.
            points (Tensor): ``B x N x 2`` clicks.
            labels (Tensor): ``B x N`` labels.
            prev_logits (Tensor, optional): Previous logits (for the
                changed region that locates the window).
            selected (list[int]): Batch indices of the samples to refine.
            valid_sizes (Tensor): ``B x 2`` ``(h, w)`` of the unpadded
                images in map pixels, on the CPU; windows stay inside them.
            prompt_boxes (Tensor, optional): ``B x 4`` box prompts.

        Returns:
            tuple: ``logits`` at ``S/4`` and ``pred_logits`` at ``S``, both
            with the windows pasted, and PatchDiff's outputs with the
            ``boxes`` and the batch ``index`` of the refined samples.
        """
        index = torch.tensor(selected, device=base.device)
        # Every sample selected (one image, or training) needs no copies.
        every = selected == list(range(len(base)))

        def pick(tensor: Tensor) -> Tensor:
            return tensor if every else tensor[index]

        new_masks = pick(global_out['logits'])[:, 0] > 0
        prev_masks = torch.zeros_like(new_masks) if prev_logits is None \
            else pick(prev_logits)[:, 0] > 0
        masks = torch.stack([new_masks, prev_masks]).cpu().numpy()
        last = (self.last_clicks(pick(points), pick(labels)) / 4).cpu().numpy()
        windows = [[
            4 * v
            for v in select_patch_box(new, prev, tuple(click), tuple(
                valid), self.patch_expand_ratio, self.patch_min_size)
        ] for new, prev, click, valid in zip(masks[0], masks[1], last,
                                             valid_sizes[selected].tolist())]
        # The float32 values PatchDiff crops with, also on the host.
        windows = np.asarray(windows, dtype=np.float32)
        boxes = points.new_tensor(windows)
        out = self.run_refiner(
            self.patch_refiner, pick(inputs), pick(global_out['features']),
            pick(global_out['logits']), pick(points), pick(labels), boxes,
            None if prompt_boxes is None else pick(prompt_boxes))
        logits = base.clone()
        pred_logits = F.interpolate(
            base, (self.input_size, self.input_size),
            mode='bilinear',
            align_corners=False)
        for row, sample in enumerate(selected):
            for target, stride in ((logits, 4), (pred_logits, 1)):
                paste_window(target[sample], out['logits'][row],
                             windows[row].tolist(), stride)
        return logits, pred_logits, dict(out, boxes=boxes, index=index)

    @staticmethod
    def last_clicks(points: Tensor, labels: Tensor) -> Tensor:
        """``B x 2`` newest valid click of each row (the last label >= 0)."""
        valid = labels >= 0
        positions = torch.arange(labels.shape[1], device=labels.device)
        last = torch.where(valid, positions, -1).max(dim=1).values
        return points[torch.arange(len(points)), last.clamp(min=0)]

    def interaction_losses(self, outputs: Interaction,
                           gt: Tensor) -> Dict[str, Tensor]:
        """Equation (3) for one interaction.

        ``decoder`` on SAM's logits; for GlobalDiff (upsampled to the input
        resolution) and PatchDiff (in its windows) Dice and BCE on the error
        map, supervised by the error region between the ground truth and
        SAM's mask (logits > 0), and the normalized focal loss of the
        refined logits with that region weighted (``error_weight`` of the
        loss); optionally a Dice term on the refined logits and a BCE term
        on the detail map.

        Args:
            outputs (Interaction): The interaction.
            gt (Tensor): ``B x 1 x S x S`` 1 / 0 / -1 masks, input frame.

        Returns:
            dict[str, Tensor]: Each configured term under its ``loss_name``.
        """
        losses = super().interaction_losses(outputs, gt)
        if outputs.global_refinement is not None:
            global_out = outputs.global_refinement
            # The detail map is only scored by the optional detail term.
            global_maps = ('error', 'logits') + (
                ('detail', ) if 'global_detail_bce' in self.losses else ())
            losses.update(
                self.refiner_losses(
                    'global', {
                        name: upsample_to(global_out[name], gt)
                        for name in global_maps
                    }, upsample_to(outputs.coarse, gt), gt))
        if outputs.patch_refinement is not None:
            patch = outputs.patch_refinement
            losses.update(
                self.refiner_losses('patch', patch, patch['coarse'],
                                    self.patch_target(gt, patch)))
        return losses

    def patch_target(self, gt: Tensor, patch: Dict[str, Tensor]) -> Tensor:
        """The ground truth inside PatchDiff's windows, at patch size."""
        rois = torch.cat(
            [patch['index'][:, None].to(patch['boxes']), patch['boxes']],
            dim=1)
        crop = self.patch_refiner.crop_image
        obj = crop((gt == 1).float(), rois)
        valid = crop((gt != -1).float(), rois)
        target = (obj >= 0.5).long()
        target[valid < 0.5] = -1
        return target

    def refiner_losses(self, stage: str, out: Dict[str, Tensor],
                       coarse: Tensor, target: Tensor) -> Dict[str, Tensor]:
        """Error-head and refined-output losses of one refiner.

        Args:
            stage (str): ``'global'`` or ``'patch'``.
            out (dict[str, Tensor]): The refiner's ``error``, ``detail``
                and ``logits``.
            coarse (Tensor): The logits it refines (SAM's, in its frame).
            target (Tensor): 1 / 0 / -1 ground truth in its frame.

        Returns:
            dict[str, Tensor]: The configured terms of this stage.
        """
        valid = target != -1
        error = ((coarse > 0) != (target == 1)) & valid
        inputs = {
            'error_dice': (out['error'].masked_fill(~valid,
                                                    -1e4), error.float()),
            'error_bce': (out['error'], error.long().masked_fill(~valid,
                                                                 -1)[:, 0]),
            'refined': (out['logits'], target, error),
            'refined_dice':
            (out['logits'].masked_fill(~valid, -1e4), (target == 1).float()),
        }
        if 'detail' in out:
            inputs['detail_bce'] = (out['detail'],
                                    target.masked_fill(~valid, -1)[:, 0])
        losses = {}
        for term, args in inputs.items():
            if f'{stage}_{term}' in self.losses:
                loss = self.losses[f'{stage}_{term}']
                losses[loss.loss_name] = loss(*args)
        return losses


def paste_window(target: Tensor, patch: Tensor, box: Sequence[float],
                 stride: int) -> None:
    """Write a patch into the map pixels whose centres lie in its window.

    The patch is resampled bilinearly at those pixel centres; every other
    pixel of the map is untouched.

    Args:
        target (Tensor): ``C x H x W`` map, each pixel ``stride`` input
            pixels wide; changed in place.
        patch (Tensor): ``C x P x P`` patch covering ``box``.
        box (Sequence[float]): ``(x0, y0, x1, y1)`` window in input pixels
            (numbers on the host, so that pasting needs no transfer).
        stride (int): Input pixels per map pixel.
    """
    height, width = target.shape[-2:]
    x0, y0, x1, y1 = (float(v) for v in box)
    # Map pixel i is in when its centre (i + 0.5) * stride is in the window.
    left = max(0, math.ceil(x0 / stride - 0.5))
    right = min(width - 1, math.floor(x1 / stride - 0.5))
    top = max(0, math.ceil(y0 / stride - 0.5))
    bottom = min(height - 1, math.floor(y1 / stride - 0.5))
    if right < left or bottom < top:
        return
    cols = torch.arange(left, right + 1, device=target.device) + 0.5
    rows = torch.arange(top, bottom + 1, device=target.device) + 0.5
    grid_x = 2 * (cols * stride - x0) / (x1 - x0) - 1
    grid_y = 2 * (rows * stride - y0) / (y1 - y0) - 1
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing='xy'), -1)
    target[:, top:bottom + 1, left:right + 1] = F.grid_sample(
        patch[None],
        grid[None].to(patch.dtype),
        mode='bilinear',
        padding_mode='border',
        align_corners=False)[0]
