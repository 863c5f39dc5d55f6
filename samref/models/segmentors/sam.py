# Copyright (c) samref contributors. All rights reserved.
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS, TASK_UTILS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .base import BaseInteractiveSegmentor
from .interaction import Interaction


@MODELS.register_module()
class SAM(BaseInteractiveSegmentor):
    """Segment Anything as a click-based interactive segmentor.

    The three parts are ``segment_anything``'s own modules and keep the
    official attribute names, so an official checkpoint
    (``sam_vit_b_01ec64.pth`` and its siblings) loads strictly into this
    model without key conversion.

    Args:
        image_encoder (dict): Config of the image encoder
            (``SAMImageEncoder``).
        prompt_encoder (dict): Config of the prompt encoder
            (``SAMPromptEncoder``).
        mask_decoder (dict): Config of the mask decoder (``SAMMaskDecoder``).
        losses (dict, optional): Loss configs by term; SAM uses ``decoder``
            (on the coarse logits, e.g. ``NormalizedFocalLoss``), the
            optional ``decoder_dice`` (mmseg's ``DiceLoss``) and the optional
            ``encoder`` (on the image embeddings and the masks, e.g.
            ``PrototypeSimilarityLoss``; it needs a trained image encoder).
            Each loss's ``loss_name`` names its item. Defaults to None (no
            training).
        frozen_modules (Sequence[str]): Names of sub-modules that do not
            train (no gradient, always in eval mode), e.g.
            ``('image_encoder', 'prompt_encoder')``. Defaults to ().
        train_cfg (dict, optional): ``click_sampler``, the training click
            simulation (``IterativeClickSampler``), and ``box_alone_loss``
            (bool, default False): a sample that starts with a box and has
            extra clicks also takes the losses of the box alone, its first
            interaction (SAM supervises every round), so that the box is
            trained in every box sample and not only in those drawn
            without extra clicks. Defaults to None.
        mask_output (str): Which decoder mask is the prediction and is fed
            back at the next click: ``'single'`` takes the single-mask output
            (mask token 0) at every click, as FocSAM does; ``'best_iou'``
            asks for the multimask output and keeps the mask with the best
            predicted IoU, as SegNext's SAM evaluation does.
            Defaults to ``'single'``.
        data_preprocessor (dict, optional): Normalisation with SAM's pixel
            mean/std and zero padding to the input size. Defaults to None.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """
    mask_outputs = ('single', 'best_iou')
    # The loss terms of each stage of the model: a ``losses`` key outside
    # them is an error (a misspelt term would silently train another
    # objective).
    loss_terms: Dict[str, Tuple[str, ...]] = dict(
        decoder=('decoder', 'decoder_dice'), encoder=('encoder', ))

    def __init__(self,
                 image_encoder: ConfigType,
                 prompt_encoder: ConfigType,
                 mask_decoder: ConfigType,
                 losses: OptConfigType = None,
                 frozen_modules: Sequence[str] = (),
                 train_cfg: OptConfigType = None,
                 mask_output: str = 'single',
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if mask_output not in self.mask_outputs:
            raise ValueError(f'mask_output must be one of {self.mask_outputs}'
                             f', got {mask_output!r}')
        image_encoder = MODELS.build(image_encoder)
        super().__init__(
            input_size=image_encoder.img_size,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.image_encoder = image_encoder
        self.prompt_encoder = MODELS.build(prompt_encoder)
        self.mask_decoder = MODELS.build(mask_decoder)
        self.mask_output = mask_output
        known = [t for terms in self.loss_terms.values() for t in terms]
        unknown = sorted(set(losses or {}) - set(known))
        if unknown:
            raise ValueError(
                f'{type(self).__name__} has no loss term '
                f'{", ".join(map(repr, unknown))}; its terms are ' +
                '; '.join(f'{stage}: {", ".join(terms)}'
                          for stage, terms in self.loss_terms.items()))
        self.losses = nn.ModuleDict({
            term: MODELS.build(cfg)
            for term, cfg in (losses or {}).items()
        })
        self.frozen_modules = tuple(frozen_modules)
        if 'encoder' in self.losses and 'image_encoder' in frozen_modules:
            raise ValueError('losses.encoder trains the image encoder, but '
                             'frozen_modules freezes it; drop one of them')
        if type(self).__init__ is SAM.__init__:
            self.freeze()  # a subclass freezes once its modules are built
        train_cfg = train_cfg or {}
        self.click_sampler = TASK_UTILS.build(train_cfg['click_sampler']) \
            if 'click_sampler' in train_cfg else None
        self.box_alone_loss = bool(train_cfg.get('box_alone_loss', False))

    def freeze(self) -> None:
        """Stop the gradients of :attr:`frozen_modules` and keep them in eval
        mode.

        ``SAM.__init__`` checks the frozen modules against the losses; a
        subclass that builds more modules calls this at the end of its
        ``__init__``.
        """
        for name in self.frozen_modules:
            if not hasattr(self, name):
                raise AttributeError(f'frozen_modules names {name!r}, which '
                                     f'{type(self).__name__} does not have')
            module = getattr(self, name)
            module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> 'SAM':
        """Set the training mode; frozen modules stay in eval mode."""
        super().train(mode)
        for name in self.frozen_modules:
            getattr(self, name).eval()
        return self

    @contextmanager
    def eval_mode(self) -> Iterator[None]:
        """Eval mode inside the block, the previous mode after it; nothing
        is switched when the model is in eval mode already (switching walks
        every module)."""
        was_training = self.training
        if was_training:
            self.eval()
        try:
            yield
        finally:
            if was_training:
                self.train()

    def encode_image(
            self,
            inputs: Tensor,
            image_embeddings: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Run the image encoder, unless its output is given.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            image_embeddings (Tensor, optional): Stored encoder output.

        Returns:
            dict[str, Tensor]: ``image_embeddings``, ``B x 256 x 64 x 64``
            for SAM's published sizes.
        """
        if image_embeddings is None:
            frozen = 'image_encoder' in self.frozen_modules
            with torch.set_grad_enabled(torch.is_grad_enabled()
                                        and not frozen):
                image_embeddings = self.image_encoder(inputs)
        return dict(image_embeddings=image_embeddings)

    @staticmethod
    def split_features(features: Dict[str, Tensor],
                       batch_size: int) -> List[Dict[str, Tensor]]:
        """Image features of a batch as one dict per sample.

        Args:
            features (dict): Output of :meth:`encode_image`: batched
                tensors, lists of batched tensors, and scalars, which every
                sample shares.
            batch_size (int): Samples in the batch.

        Returns:
            list[dict]: Each sample's features, batch dimension kept.
        """
        return [{
            k:
            v[i:i + 1] if isinstance(v, Tensor) and v.dim() else
            [x[i:i + 1] for x in v] if isinstance(v, list) else v
            for k, v in features.items()
        } for i in range(batch_size)]

    def decode(self,
               image_embeddings: Tensor,
               points: Tensor,
               labels: Tensor,
               prev_logits: Optional[Tensor] = None,
               multimask_output: bool = False,
               boxes: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """SAM's prompt encoder and mask decoder, as ``SamPredictor`` calls
        them, one image at a time.

        Args:
            image_embeddings (Tensor): ``B x C x h x w`` image embeddings.
            points (Tensor): ``B x N x 2`` clicks ``(x, y)``, input frame.
            labels (Tensor): ``B x N`` click labels.
            prev_logits (Tensor, optional): ``B x 1 x 4h x 4w`` mask prompt.
            multimask_output (bool): Return the three multimask outputs
                instead of the single-mask one. Defaults to False.
            boxes (Tensor, optional): ``B x 4`` box prompts ``(x0, y0, x1,
                y1)``, input frame. Defaults to None.

        Returns:
            tuple[Tensor, Tensor]: ``B x M x 4h x 4w`` low-resolution logits
            and ``B x M`` predicted IoUs (``M`` is 1 or 3).
        """
        if len(image_embeddings) > 1:
            # SAM's decoder takes one image with any number of prompts.
            outs = [
                self.decode(
                    image_embeddings[i:i + 1], points[i:i + 1],
                    labels[i:i + 1],
                    None if prev_logits is None else prev_logits[i:i + 1],
                    multimask_output,
                    None if boxes is None else boxes[i:i + 1])
                for i in range(len(image_embeddings))
            ]
            return tuple(torch.cat(parts) for parts in zip(*outs))
        # A box alone has no click; SAM then takes no point at all.
        sparse, dense = self.prompt_encoder(
            points=(points,
                    labels) if points.shape[1] or boxes is None else None,
            boxes=boxes,
            masks=prev_logits)
        return self.mask_decoder(
            image_embeddings=image_embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output)

    def interact(self,
                 image_features: Dict[str, Tensor],
                 points: Tensor,
                 labels: Tensor,
                 previous: Optional[Interaction] = None,
                 boxes: Optional[Tensor] = None) -> Interaction:
        """One click: the mask picked by ``mask_output``, the previous
        logits as SAM's mask prompt.

        Args:
            image_features (dict[str, Tensor]): Output of
                :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` click labels.
            previous (Interaction, optional): The previous click's.
            boxes (Tensor, optional): ``B x 4`` box prompts, input frame.

        Returns:
            Interaction: ``logits`` (``B x 1 x 256 x 256``) and ``iou_pred``
            (``B``), the decoder's predicted IoU of that mask.
        """
        return self.predict_mask(image_features, points, labels,
                                 None if previous is None else previous.logits,
                                 boxes)

    def predict_mask(self,
                     image_features: Dict[str, Tensor],
                     points: Tensor,
                     labels: Tensor,
                     mask_prompt: Optional[Tensor] = None,
                     boxes: Optional[Tensor] = None) -> Interaction:
        """SAM's mask for the clicks, picked by ``mask_output``.

        Args:
            image_features (dict[str, Tensor]): Output of
                :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` click labels.
            mask_prompt (Tensor, optional): ``B x 1 x 256 x 256`` logits of
                the previous mask.
            boxes (Tensor, optional): ``B x 4`` box prompts, input frame.

        Returns:
            Interaction: ``logits`` and ``iou_pred``.
        """
        multimask = self.mask_output == 'best_iou'
        logits, iou_pred = self.decode(image_features['image_embeddings'],
                                       points, labels, mask_prompt, multimask,
                                       boxes)
        if multimask:
            best = iou_pred.argmax(dim=1)
            rows = torch.arange(len(best), device=best.device)
            logits, iou_pred = logits[rows, best, None], iou_pred[rows, best]
        else:
            iou_pred = iou_pred[:, 0]
        return Interaction(logits=logits, iou_pred=iou_pred)

    def training_batch(
            self, inputs: Tensor, data_samples: List[SegDataSample]
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """The ground truth and image features of a training batch.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` (0, 1,
                255 ignored/padding); pre-extracted ``image_embeddings`` in
                every sample replace the image encoder.

        Returns:
            tuple: ``B x 1 x S x S`` ground truth on the inputs' device
            (1 object, 0 background, -1 ignored) and :meth:`encode_image`'s
            features.
        """
        if self.click_sampler is None:
            raise RuntimeError(f'{type(self).__name__} has no click_sampler'
                               ' in train_cfg, so it cannot train')
        # The data preprocessor moves the samples to the model's device; a
        # batch built by hand (a benchmark) may leave them on the CPU.
        gt = torch.stack([s.gt_sem_seg.data
                          for s in data_samples]).long().to(inputs.device)
        gt[gt == 255] = -1
        stored = [s.get('image_embeddings') for s in data_samples]
        embeddings = torch.stack(stored).to(inputs) \
            if all(e is not None for e in stored) else None
        if embeddings is not None and 'encoder' in self.losses:
            raise ValueError('losses.encoder trains the image encoder, but '
                             'the samples bring stored image_embeddings')
        return gt, self.encode_image(inputs, embeddings)

    def loss(self, inputs: Tensor,
             data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """A training step with simulated clicks (InterFormer, FocSAM).

        For every sample: a first click at the object's centre (or, for the
        click sampler's ``box_prob`` share, a jittered box of the object),
        ``n`` extra clicks (``n`` drawn per sample with its dataset's
        ``click_gamma``), each simulated from the model's own prediction
        without gradient and in eval mode, the low-resolution logits (and
        state) fed back; then one last interaction with gradient, whose
        :meth:`interaction_losses` are averaged over the batch (with
        ``box_alone_loss``, a box sample's interaction with the box alone is
        one more term). The ``encoder`` loss, when configured, compares the
        image embeddings with the masks. Pre-extracted embeddings in the
        samples (``image_embeddings``) replace the image encoder.

        Args:
            inputs (Tensor): ``B x 3 x S x S`` normalised, padded images.
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` (0, 1,
                255 ignored/padding) and ``click_gamma`` in the metainfo.

        Returns:
            dict[str, Tensor]: The losses, and ``clicks``, the mean number of
            clicks of the batch (logged).
        """
        gt, features = self.training_batch(inputs, data_samples)
        losses: Dict[str, List[Tensor]] = {}
        if 'encoder' in self.losses:
            loss = self.losses['encoder']
            losses[loss.loss_name] = [loss(features['image_embeddings'], gt)]
        per_sample = self.split_features(features, len(data_samples))
        # All simulations first, in one switch to eval mode: switching
        # walks every module, twice per sample otherwise.
        with self.eval_mode():
            simulated = [
                self.simulate_clicks(per_sample[i], gt[i:i + 1],
                                     sample.metainfo.get('click_gamma', 0.6))
                for i, sample in enumerate(data_samples)
            ]
        clicks = []
        for i, (points, labels, boxes, previous) in enumerate(simulated):
            supervised = [(points, labels, previous)]
            if (self.box_alone_loss and boxes is not None
                    and previous is not None):
                # The box's own interaction, before any click.
                supervised.append((points[:, :0], labels[:, :0], None))
            for clicked, clicked_labels, before in supervised:
                outputs = self.interact(per_sample[i], clicked, clicked_labels,
                                        before, boxes)
                for name, value in self.interaction_losses(
                        outputs, gt[i:i + 1]).items():
                    losses.setdefault(name, []).append(value)
            clicks.append(points.shape[1])
        averaged = {k: torch.stack(v).mean() for k, v in losses.items()}
        averaged['clicks'] = inputs.new_tensor(float(np.mean(clicks)))
        return averaged

    @torch.no_grad()
    def simulate_clicks(
        self,
        features: Dict[str, Tensor],
        gt: Tensor,
        gamma: float,
        num_extra_clicks: Optional[int] = None
    ) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Interaction]]:
        """The prompts before the training interaction of one sample.

        Args:
            features (dict[str, Tensor]): The sample's image features.
            gt (Tensor): ``1 x 1 x S x S`` 1 / 0 / -1 mask.
            gamma (float): The decay of the number of extra clicks.
            num_extra_clicks (int, optional): The number of extra clicks,
                drawn with ``gamma`` when None.

        Returns:
            tuple: ``1 x N x 2`` points, ``1 x N`` labels, the ``1 x 4`` box
            prompt (None when the sample starts with a click) and the last
            simulated :class:`Interaction` (None without extra prompts).
        """
        mask = gt[0, 0].cpu().numpy()
        boxes: Optional[Tensor] = None
        if self.click_sampler.starts_with_box():
            boxes = torch.tensor([self.click_sampler.first_box(mask)],
                                 dtype=torch.float32,
                                 device=gt.device)
            clicks = []
        else:
            x, y = self.click_sampler.first_click(mask)
            clicks = [(x, y, 1)]
        previous: Optional[Interaction] = None
        with self.eval_mode():
            if num_extra_clicks is None:
                num_extra_clicks = self.click_sampler.num_extra_clicks(gamma)
            for _ in range(num_extra_clicks):
                points, labels = self._click_tensors(clicks, gt.device)
                previous = self.interact(features, points, labels, previous,
                                         boxes)
                pred = self.postprocess_logits(previous.prediction_logits,
                                               mask.shape, mask.shape)[0,
                                                                       0] > 0
                click = self.click_sampler.next_click(mask, pred.cpu().numpy())
                if click is None:
                    break
                clicks.append(click)
        points, labels = self._click_tensors(clicks, gt.device)
        return points, labels, boxes, previous

    @staticmethod
    def _click_tensors(clicks: List[tuple],
                       device: torch.device) -> Tuple[Tensor, Tensor]:
        """``1 x N x 2`` points and ``1 x N`` labels of ``(x, y, label)``."""
        points = torch.tensor([[c[:2] for c in clicks]],
                              dtype=torch.float32,
                              device=device).reshape(1, len(clicks), 2)
        labels = torch.tensor([[int(c[2]) for c in clicks]],
                              dtype=torch.int64,
                              device=device)
        return points, labels

    def interaction_losses(self, outputs: Interaction,
                           gt: Tensor) -> Dict[str, Tensor]:
        """Losses of one interaction against the ground truth.

        Logits are upsampled (bilinearly, as for the prediction) to the
        input resolution and compared with the full-resolution mask, so thin
        structures are not lost to a low-resolution target.

        Args:
            outputs (Interaction): The interaction.
            gt (Tensor): ``B x 1 x S x S`` object masks in the padded input
                frame: 1 object, 0 background, -1 ignored (e.g. padding).

        Returns:
            dict[str, Tensor]: The ``decoder`` loss (called with the logits
            and the 1 / 0 / -1 mask, e.g. ``NormalizedFocalLoss``) and the
            optional ``decoder_dice`` term (mmseg's ``DiceLoss``, with the
            ignored pixels left out) on SAM's logits, under their
            ``loss_name``.
        """
        losses: Dict[str, Tensor] = {}
        if not {'decoder', 'decoder_dice'} & set(self.losses):
            return losses
        coarse = upsample_to(
            outputs.logits if outputs.coarse is None else outputs.coarse, gt)
        if 'decoder' in self.losses:
            loss = self.losses['decoder']
            losses[loss.loss_name] = loss(coarse, gt)
        if 'decoder_dice' in self.losses:
            loss = self.losses['decoder_dice']
            valid = gt != -1
            losses[loss.loss_name] = loss(
                coarse.masked_fill(~valid, -1e4), (gt == 1).float())
        return losses


def upsample_to(logits: Tensor, like: Tensor) -> Tensor:
    """Bilinearly resize logits to the spatial size of ``like``."""
    return resize_logits(logits, tuple(like.shape[-2:]))


def resize_logits(logits: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinearly resize ``B x C x h x w`` logits to ``size``; as they are
    when they have it already."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size, mode='bilinear', align_corners=False)
