# Copyright (c) samref contributors. All rights reserved.
from typing import Optional

from mmseg.registry import MODELS
from segment_anything.modeling import MaskDecoder, TwoWayTransformer


@MODELS.register_module()
class SAMMaskDecoder(MaskDecoder):
    """SAM's two-way-transformer mask decoder.

    ``segment_anything``'s ``MaskDecoder`` with SAM's defaults; its
    parameters load from the ``mask_decoder.*`` keys of the official
    checkpoints. It predicts ``1 + num_multimask_outputs`` low-resolution
    (4x the embedding size) masks and their predicted IoUs.

    Args:
        transformer_dim (int): Channels of the transformer. Defaults to 256.
        transformer (dict, optional): Arguments of ``TwoWayTransformer``;
            SAM's (depth 2, MLP dim 2048, 8 heads) when None.
        num_multimask_outputs (int): Masks predicted for ambiguous prompts.
            Defaults to 3.
        iou_head_depth (int): Layers of the IoU-prediction MLP. Defaults to 3.
        iou_head_hidden_dim (int): Hidden channels of that MLP.
            Defaults to 256.
    """

    def __init__(self,
                 transformer_dim: int = 256,
                 transformer: Optional[dict] = None,
                 num_multimask_outputs: int = 3,
                 iou_head_depth: int = 3,
                 iou_head_hidden_dim: int = 256) -> None:
        transformer_args = dict(
            depth=2, embedding_dim=transformer_dim, mlp_dim=2048, num_heads=8)
        transformer_args.update(transformer or {})
        super().__init__(
            transformer_dim=transformer_dim,
            transformer=TwoWayTransformer(**transformer_args),
            num_multimask_outputs=num_multimask_outputs,
            iou_head_depth=iou_head_depth,
            iou_head_hidden_dim=iou_head_hidden_dim)
