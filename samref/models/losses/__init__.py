# Copyright (c) samref contributors. All rights reserved.
from .click_loss import ClickLoss, click_loss
from .normalized_focal_loss import NormalizedFocalLoss, normalized_focal_loss
from .prototype_similarity_loss import (PrototypeSimilarityLoss,
                                        prototype_similarity_loss)

__all__ = [
    'ClickLoss', 'click_loss', 'NormalizedFocalLoss', 'normalized_focal_loss',
    'PrototypeSimilarityLoss', 'prototype_similarity_loss'
]
