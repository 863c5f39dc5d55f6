# Copyright (c) samref contributors. All rights reserved.
from typing import Dict, Optional, Tuple

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .base import BaseInteractiveSegmentor


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

    def __init__(self,
                 image_encoder: ConfigType,
                 prompt_encoder: ConfigType,
                 mask_decoder: ConfigType,
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
            image_embeddings = self.image_encoder(inputs)
        return dict(image_embeddings=image_embeddings)

    def decode(self,
               image_embeddings: Tensor,
               points: Tensor,
               labels: Tensor,
               prev_logits: Optional[Tensor] = None,
               multimask_output: bool = False) -> Tuple[Tensor, Tensor]:
        """SAM's prompt encoder and mask decoder, as ``SamPredictor`` calls
        them.

        Args:
            image_embeddings (Tensor): ``B x C x h x w`` image embeddings.
            points (Tensor): ``B x N x 2`` clicks ``(x, y)``, input frame.
            labels (Tensor): ``B x N`` click labels.
            prev_logits (Tensor, optional): ``B x 1 x 4h x 4w`` mask prompt.
            multimask_output (bool): Return the three multimask outputs
                instead of the single-mask one. Defaults to False.

        Returns:
            tuple[Tensor, Tensor]: ``B x M x 4h x 4w`` low-resolution logits
            and ``B x M`` predicted IoUs (``M`` is 1 or 3).
        """
        sparse, dense = self.prompt_encoder(
            points=(points, labels), boxes=None, masks=prev_logits)
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
                 prev_logits: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """One click: the mask picked by ``mask_output``.

        Args:
            image_features (dict[str, Tensor]): Output of
                :meth:`encode_image`.
            points (Tensor): ``B x N x 2`` clicks, input frame.
            labels (Tensor): ``B x N`` click labels.
            prev_logits (Tensor, optional): Previous low-resolution logits.

        Returns:
            dict[str, Tensor]: ``logits`` (``B x 1 x 256 x 256``) and
            ``iou_pred`` (``B``), the decoder's predicted IoU of that mask.
        """
        multimask = self.mask_output == 'best_iou'
        logits, iou_pred = self.decode(image_features['image_embeddings'],
                                       points, labels, prev_logits, multimask)
        if multimask:
            best = iou_pred.argmax(dim=1)
            rows = torch.arange(len(best), device=best.device)
            logits, iou_pred = logits[rows, best, None], iou_pred[rows, best]
        else:
            iou_pred = iou_pred[:, 0]
        return dict(logits=logits, iou_pred=iou_pred)
