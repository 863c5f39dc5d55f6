# Copyright (c) samref contributors. All rights reserved.
from .normalized_focal_loss import NormalizedFocalLoss, normalized_focal_loss

__all__ = ['NormalizedFocalLoss', 'normalized_focal_loss']
