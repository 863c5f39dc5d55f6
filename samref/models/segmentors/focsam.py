# Copyright (c) samref contributors. All rights reserved.
import random
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ...utils.timer import timed
from .interaction import Interaction
from .sam import SAM, upsample_to


class SimulationDraw(NamedTuple):
    """The random choices of a training sample's click simulation.

    Attributes:
        num_extra_clicks (int): Clicks simulated after the first one.
        refine_step (int): 0-based click at which the embedding is refined.
        expand_ratio (tuple[float, float]): ``(height, width)`` scaling of
            the focus box at that click.
    """
    num_extra_clicks: int
    refine_step: int
    expand_ratio: Tuple[float, float]


def stack_clicks(
        clicks: Sequence[Tuple[Tensor, Tensor]]) -> Tuple[Tensor, Tensor]:
    """Stack the clicks of samples, padded to the most clicks.

    Args:
        clicks (Sequence[tuple[Tensor, Tensor]]): Per sample, ``1 x N_i x 2``
            points and ``1 x N_i`` labels.

    Returns:
        tuple[Tensor, Tensor]: ``B x N x 2`` points (padding at 0) and
        ``B x N`` labels (padding -1, no click), ``N`` the largest ``N_i``.
    """
    longest = max(points.shape[1] for points, _ in clicks)
    points = [F.pad(p, (0, 0, 0, longest - p.shape[1])) for p, _ in clicks]
    labels = [
        F.pad(lb, (0, longest - lb.shape[1]), value=-1) for _, lb in clicks
    ]
    return torch.cat(points), torch.cat(labels)


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
    refine click of a simulation is drawn with ``P(r)`` proportional to
    ``refine_gamma ** r`` over ``r = 0 .. n``, ``n`` its simulated clicks,
    and the random choices are shared as FocSAM's code shares them (see
    :meth:`loss`).

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
        train_cfg (dict, optional): ``click_sampler`` (see :class:`SAM`),
            ``refine_gamma`` (default 0.6) and ``refine_gamma_by_source``
            (default none): the refine click decay of the samples whose
            ``source`` metainfo it names, e.g. FocSAM's ``dict(lvis=0.35)``.
        mask_output (str): SAM's mask token policy, see :class:`SAM`.
        data_preprocessor (dict, optional): See :class:`SAM`.
        init_cfg (dict, optional): Initialisation config.
    """

    loss_terms = dict(SAM.loss_terms, refiner=('click', ))

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
            frozen_modules=frozen_modules,
            train_cfg=train_cfg,
            mask_output=mask_output,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if refine_step < 0:
            raise ValueError(f'refine_step must be >= 0, got {refine_step}')
        if 'encoder' in self.losses:
            raise ValueError('FocSAM trains its refiner, not the image '
                             'encoder: drop losses.encoder')
        self.refiner = MODELS.build(refiner)
        self.refine_step = refine_step
        if self.box_alone_loss:
            raise ValueError('FocSAM trains one interaction per sample, as '
                             "FocSAM's code does: drop "
                             'train_cfg.box_alone_loss')
        train_cfg = train_cfg or {}
        self.refine_gamma = train_cfg.get('refine_gamma', 0.6)
        self.refine_gamma_by_source = dict(
            train_cfg.get('refine_gamma_by_source', {}))
        gammas = {'refine_gamma': self.refine_gamma}
        gammas.update((f'refine_gamma_by_source[{source!r}]', gamma)
                      for source, gamma in self.refine_gamma_by_source.items())
        for setting, gamma in gammas.items():
            if not 0 < gamma <= 1:
                raise ValueError(f'train_cfg.{setting} must be in (0, 1], '
                                 f'got {gamma}')
        self.freeze()

    def coarse_decode(self,
                      image_embeddings: Tensor,
                      points: Tensor,
                      labels: Tensor,
                      prev_logits: Optional[Tensor],
                      boxes: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """The decoder pass whose outputs steer the refiner.

        Args:
            image_embeddings (Tensor): ``B x C x h x w`` unrefined embedding.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` labels.
            prev_logits (Tensor, optional): Previous low-resolution logits.
            boxes (Tensor, optional): ``B x 4`` box prompts, input frame.

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
            logits, _ = self.decode(
                image_embeddings, points, labels, prev_logits, boxes=boxes)
        finally:
            hook.remove()
        return logits, torch.cat(tokens)

    def interact(self,
                 image_features: Dict[str, Tensor],
                 points: Tensor,
                 labels: Tensor,
                 previous: Optional[Interaction] = None,
                 boxes: Optional[Tensor] = None) -> Interaction:
        """One click; the embedding is refined at the refine click.

        Args:
            image_features (dict[str, Tensor]): From :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` labels (1, 0, -1 padding).
            previous (Interaction, optional): The previous click's.
            boxes (Tensor, optional): ``B x 4`` box prompts, input frame,
                given to SAM's decoder in both of its passes; the refine
                click counts clicks only.

        Returns:
            Interaction: ``logits`` and ``iou_pred`` (as :class:`SAM`),
            ``branch``
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
        prev_logits = None if previous is None else previous.logits
        state = {} if previous is None else dict(previous.state)
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
                    None if prev_logits is None else prev_logits[due],
                    None if boxes is None else boxes[due])
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
            outputs = self.predict_mask(
                dict(image_features, image_embeddings=embeddings), points,
                labels, prev_logits, boxes)
        state.update(refined=refined, image_embeddings=embeddings)
        outputs.branch = ['refine' if d else 'sam' for d in due_list]
        outputs.state = state
        outputs.clicks = (points, labels)
        outputs.stage_times = times
        return outputs

    def loss(self, inputs: Tensor,
             data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """FocSAM's training step (its ``ClickMixSegmentorRefine``).

        As :meth:`SAM.loss`: clicks simulated per sample without gradient,
        then one interaction per sample with gradient, whose losses train
        the refiner (pre-extracted ``image_embeddings`` in the samples
        replace the image encoder). The random choices and the losses
        follow FocSAM's code, which simulates the samples of each dataset of
        a batch together:

        - the samples of a group (same ``source`` and ``click_gamma``
          metainfo, i.e. the same dataset) share one :class:`SimulationDraw`
          (:meth:`draw_simulations`): the number of extra clicks, the refine
          click and the focus box scaling of the simulation's refine click;
        - the interactions with gradient share one more focus box scaling,
          drawn for the batch;
        - the losses are taken on the whole batch: the decoder loss is the
          mean of the samples' losses, the click loss pools the valid clicks
          of the batch (:class:`ClickLoss`).

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` (0, 1,
                255 ignored) and ``click_gamma`` and ``source`` in the
                metainfo.

        Returns:
            dict[str, Tensor]: The losses, and ``clicks``, the mean number of
            clicks of the batch (logged).
        """
        gt, features = self.training_batch(inputs, data_samples)
        per_sample = self.split_features(features, len(data_samples))
        simulated = []
        draws = self.draw_simulations(data_samples)
        with self.eval_mode():
            for i, (sample, draw) in enumerate(zip(data_samples, draws)):
                gamma = sample.metainfo.get('click_gamma', 0.6)
                with self.refiner.fixed_expand_ratio(draw.expand_ratio):
                    simulated.append(
                        self.simulate_clicks(per_sample[i], gt[i:i + 1], gamma,
                                             draw.num_extra_clicks,
                                             draw.refine_step))
        outputs = []
        with self.refiner.fixed_expand_ratio(self.draw_expand_ratio()):
            for features_i, (points, labels, boxes,
                             previous) in zip(per_sample, simulated):
                outputs.append(
                    self.interact(features_i, points, labels, previous, boxes))
        points, labels = stack_clicks([(p, lb) for p, lb, _, _ in simulated])
        losses = self.interaction_losses(
            Interaction(
                logits=torch.cat([out.logits for out in outputs]),
                clicks=(points, labels)), gt)
        losses['clicks'] = inputs.new_tensor(
            float(np.mean([p.shape[1] for p, _, _, _ in simulated])))
        return losses

    def draw_simulations(
            self, data_samples: List[SegDataSample]) -> List[SimulationDraw]:
        """The random choices of a batch's click simulations, one draw per
        group of samples as FocSAM's code makes them per dataset.

        A group is the samples with the same ``source`` and ``click_gamma``
        metainfo (samples without a source group by their click gamma).
        Its number of extra clicks ``n`` is drawn with the click
        sampler and its ``click_gamma``, its refine click ``r`` with
        ``P(r)`` proportional to ``g ** r`` over ``r = 0 .. n``, ``g`` the
        source's refine gamma (``refine_gamma_by_source``, else
        ``refine_gamma``), and its focus box scaling with
        :meth:`draw_expand_ratio`.

        Args:
            data_samples (list[SegDataSample]): The batch.

        Returns:
            list[SimulationDraw]: The draw of each sample, the same object
            for the samples of a group.
        """
        group_draws: Dict[tuple, SimulationDraw] = {}
        draws = []
        for sample in data_samples:
            source = sample.metainfo.get('source')
            gamma = sample.metainfo.get('click_gamma', 0.6)
            if (source, gamma) not in group_draws:
                num_extra_clicks = self.click_sampler.num_extra_clicks(gamma)
                group_draws[source, gamma] = SimulationDraw(
                    num_extra_clicks,
                    self.draw_refine_step(
                        num_extra_clicks,
                        self.refine_gamma_by_source.get(
                            source, self.refine_gamma)),
                    self.draw_expand_ratio())
            draws.append(group_draws[source, gamma])
        return draws

    @staticmethod
    def draw_refine_step(num_extra_clicks: int, gamma: float) -> int:
        """Draw the refine click ``r`` with ``P(r)`` proportional to
        ``gamma ** r`` over ``r = 0 .. num_extra_clicks``.

        Args:
            num_extra_clicks (int): Clicks simulated after the first one.
            gamma (float): Decay, in (0, 1].

        Returns:
            int: ``r``, the 0-based click at which the embedding is refined
            (``num_extra_clicks``: at the interaction with gradient).
        """
        weights = gamma**np.arange(num_extra_clicks + 1)
        return int(np.random.choice(len(weights), p=weights / weights.sum()))

    def draw_expand_ratio(self) -> Tuple[float, float]:
        """A ``(height, width)`` focus box scaling, each drawn uniformly
        from the refiner's ``train_expand_range``."""
        return (random.uniform(*self.refiner.train_expand_range),
                random.uniform(*self.refiner.train_expand_range))

    def simulate_clicks(
        self,
        features: Dict[str, Tensor],
        gt: Tensor,
        gamma: float,
        num_extra_clicks: Optional[int] = None,
        refine_step: Optional[int] = None
    ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Interaction]]:
        """SAM's click simulation with the embedding refined at a given
        click.

        Args:
            features (dict[str, Tensor]): The sample's image features.
            gt (Tensor): ``1 x 1 x S x S`` 1 / 0 / -1 mask.
            gamma (float): Decay of the number of extra clicks.
            num_extra_clicks (int, optional): The number of extra clicks,
                drawn with ``gamma`` when None.
            refine_step (int, optional): The 0-based click at which the
                embedding is refined, drawn with ``refine_gamma`` when None
                (:meth:`draw_refine_step`).

        Returns:
            tuple: As :meth:`SAM.simulate_clicks`.
        """
        if num_extra_clicks is None:
            num_extra_clicks = self.click_sampler.num_extra_clicks(gamma)
        if refine_step is None:
            refine_step = self.draw_refine_step(num_extra_clicks,
                                                self.refine_gamma)
        default_step = self.refine_step
        self.refine_step = refine_step
        try:
            return super().simulate_clicks(features, gt, gamma,
                                           num_extra_clicks)
        finally:
            self.refine_step = default_step

    def interaction_losses(self, outputs: Interaction,
                           gt: Tensor) -> Dict[str, Tensor]:
        """The decoder's loss on the refined embedding plus the click loss.

        Args:
            outputs (Interaction): The interaction (of the batch).
            gt (Tensor): ``B x 1 x S x S`` 1 / 0 / -1 masks, input frame.

        Returns:
            dict[str, Tensor]: Each configured term under its ``loss_name``.
        """
        losses = super().interaction_losses(outputs, gt)
        if 'click' in self.losses:
            loss = self.losses['click']
            points, labels = outputs.clicks
            losses[loss.loss_name] = loss(
                upsample_to(outputs.logits, gt), points, labels)
        return losses
