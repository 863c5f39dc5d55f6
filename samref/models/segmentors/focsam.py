# Copyright (c) samref contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ...utils.timer import timed
from .sam import SAM, upsample_to


@MODELS.register_module()
class FocSAM(SAM):
    """FocSAM: SAM whose image embedding is refined once around the object.

    Per click, top to bottom:

    1. before the refine click: SAM (prompt encoder and single-mask decoder)
       on the encoder's embedding ``F0``;
    2. at the refine click (the ``refine_step + 1``-th, the second by
       default): a coarse decoder pass on ``F0`` with the current clicks and
       the previous logits gives the coarse logits and mask token 0 after
       the two-way transformer; the refiner turns ``F0``, both and the input
       size into the refined embedding ``F``; SAM's decoder on ``F`` gives
       the click's prediction;
    3. after it: SAM's decoder on the kept ``F`` (never refined again).

    ``F`` and the refiner's inputs travel in the ``state`` output, so the
    evaluation loop and the predictor API need nothing special. In training
    the refiner runs again with gradients at the training interaction, from
    the inputs it had during the click simulation (or with the current
    clicks when the simulation had not reached the refine click yet); the
    refine click of each simulated sample is drawn with ``P(r)``
    proportional to ``refine_gamma ** r`` over ``r = 0 .. n``, ``n`` the
    sample's simulated clicks.

    Args:
        image_encoder (dict): SAM's image encoder.
        prompt_encoder (dict): SAM's prompt encoder.
        mask_decoder (dict): SAM's mask decoder.
        refiner (dict): ``FocSAMRefiner`` config.
        refine_step (int): 0-based index of the click at which the embedding
            is refined. Defaults to 1 (the second click, FocSAM's K = 2).
        losses (dict, optional): Loss configs by term: ``decoder`` (the
            decoder's logits on the refined embedding, e.g.
            ``NormalizedFocalLoss``) and ``click`` (``ClickLoss``).
        frozen_modules (Sequence[str]): Sub-modules that do not train.
        train_cfg (dict, optional): ``click_sampler`` (see :class:`SAM`) and
            ``refine_gamma`` (default 0.6).
        mask_output (str): SAM's mask token policy, see :class:`SAM`.
        data_preprocessor (dict, optional): See :class:`SAM`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 image_encoder: ConfigType,
                 prompt_encoder: ConfigType,
                 mask_decoder: ConfigType,
                 refiner: ConfigType,
                 refine_step: int = 1,
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
            train_cfg=train_cfg,
            mask_output=mask_output,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if refine_step < 0:
            raise ValueError(f'refine_step must be >= 0, got {refine_step}')
        self.refiner = MODELS.build(refiner)
        self.refine_step = refine_step
        self.refine_gamma = (train_cfg or {}).get('refine_gamma', 0.6)
        if not 0 < self.refine_gamma <= 1:
            raise ValueError('train_cfg.refine_gamma must be in (0, 1], got '
                             f'{self.refine_gamma}')
        self.frozen_modules = tuple(frozen_modules)
        self.freeze()

    def coarse_decode(self, image_embeddings: Tensor, points: Tensor,
                      labels: Tensor, prev_logits: Optional[Tensor]
                      ) -> Tuple[Tensor, Tensor]:
        """The decoder pass whose outputs steer the refiner.

        Args:
            image_embeddings (Tensor): ``B x C x h x w`` unrefined embedding.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` labels.
            prev_logits (Tensor, optional): Previous low-resolution logits.

        Returns:
            tuple[Tensor, Tensor]: ``B x 1 x 4h x 4w`` single-mask logits and
            ``B x 1 x C`` mask token 0 after the two-way transformer.
        """
        tokens: List[Tensor] = []
        # The transformer returns (tokens, image); tokens are [IoU token,
        # mask tokens, prompts], so mask token 0 is at position 1.
        hook = self.mask_decoder.transformer.register_forward_hook(
            lambda module, args, out: tokens.append(out[0][:, 1:2]))
        try:
            logits, _ = self.decode(image_embeddings, points, labels,
                                    prev_logits)
        finally:
            hook.remove()
        return logits, torch.cat(tokens)

    def interact(self,
                 image_features: Dict[str, Tensor],
                 points: Tensor,
                 labels: Tensor,
                 prev_logits: Optional[Tensor] = None,
                 state: Optional[Dict[str, Tensor]] = None
                 ) -> Dict[str, object]:
        """One click; the embedding is refined at the refine click.

        Args:
            image_features (dict[str, Tensor]): From :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` labels (1, 0, -1 padding).
            prev_logits (Tensor, optional): Previous ``logits``.
            state (dict, optional): Previous ``state`` output.

        Returns:
            dict: ``logits`` and ``iou_pred`` (as :class:`SAM`), ``branch``
            (``'refine'`` for a sample refined at this click, else
            ``'sam'``), ``state`` (``refined`` per sample, the embedding in
            use and the refiner's inputs), ``clicks`` (the points and labels,
            for the click loss) and ``stage_times``.
        """
        times: Dict[str, float] = {}
        device = points.device
        timing = self.time_stages
        original = image_features['image_embeddings']
        batch = len(original)
        state = dict(state or {})
        refined = state.get(
            'refined', torch.zeros(batch, dtype=torch.bool, device=device))
        embeddings = state.get('image_embeddings', original)
        count = (labels >= 0).sum(dim=1)
        # Training refines every sample at the interaction with gradient.
        due = ~refined & ((count > self.refine_step) | self.training)
        due_list = due.tolist()  # the one look of the host at the device
        if any(due_list):
            with timed(times, 'coarse_decoder', device, timing), \
                    torch.no_grad():
                coarse, token = self.coarse_decode(
                    original[due], points[due], labels[due],
                    None if prev_logits is None else prev_logits[due])
            for name, value in (('coarse_logits', coarse), ('mask_token',
                                                            token)):
                stored = state.get(name)
                if stored is None:
                    stored = value.new_zeros((batch, ) + value.shape[1:])
                # Under autocast the stored and the new values may differ
                # in precision.
                state[name] = stored.index_put((due, ), value.to(stored))
            refined = refined | due
        # Inference refines once; training runs the refiner again with
        # gradients from the inputs it had.
        rerun = refined if self.training else due
        if self.training or any(due_list):
            with timed(times, 'focus_refiner', device, timing):
                new = self.refiner(original[rerun],
                                   state['coarse_logits'][rerun],
                                   state['mask_token'][rerun],
                                   (self.input_size, self.input_size))
            embeddings = embeddings.index_put((rerun, ), new.to(embeddings))
        with timed(times, 'sam', device, timing):
            outputs = super().interact(
                dict(image_features, image_embeddings=embeddings), points,
                labels, prev_logits)
        state.update(refined=refined, image_embeddings=embeddings)
        outputs.update(
            branch=['refine' if d else 'sam' for d in due_list],
            state=state,
            clicks=dict(points=points, labels=labels),
            stage_times=times)
        return outputs

    def simulate_clicks(self,
                        features: Dict[str, Tensor],
                        gt: Tensor,
                        gamma: float,
                        num_extra_clicks: Optional[int] = None
                        ) -> Tuple[Tensor, Tensor, dict]:
        """SAM's click simulation with a random refine click.

        Args:
            features (dict[str, Tensor]): The sample's image features.
            gt (Tensor): ``1 x 1 x S x S`` 1 / 0 / -1 mask.
            gamma (float): Decay of the number of extra clicks.
            num_extra_clicks (int, optional): The number of extra clicks,
                drawn with ``gamma`` when None.

        Returns:
            tuple: As :meth:`SAM.simulate_clicks`.
        """
        if num_extra_clicks is None:
            num_extra_clicks = self.click_sampler.num_extra_clicks(gamma)
        weights = self.refine_gamma**np.arange(num_extra_clicks + 1)
        default_step = self.refine_step
        self.refine_step = int(
            np.random.choice(len(weights), p=weights / weights.sum()))
        try:
            return super().simulate_clicks(features, gt, gamma,
                                           num_extra_clicks)
        finally:
            self.refine_step = default_step

    def interaction_losses(self, outputs: Dict[str, object],
                           gt: Tensor) -> Dict[str, Tensor]:
        """The decoder's loss on the refined embedding plus the click loss.

        Args:
            outputs (dict): Outputs of :meth:`interact`.
            gt (Tensor): ``B x 1 x S x S`` 1 / 0 / -1 masks, input frame.

        Returns:
            dict[str, Tensor]: Each configured term under its ``loss_name``.
        """
        losses = super().interaction_losses(outputs, gt)
        if 'click' in self.losses:
            loss = self.losses['click']
            losses[loss.loss_name] = loss(
                upsample_to(outputs['logits'], gt),
                outputs['clicks']['points'], outputs['clicks']['labels'])
        return losses
