# Copyright (c) samref contributors. All rights reserved.
from .click_simulator import Click, ClickSimulator, object_box, padded_distance
from .functional import mask_iou, miou_curve, noc, nof
from .metrics import NoCMetric

__all__ = [
    'Click', 'ClickSimulator', 'object_box', 'padded_distance', 'mask_iou',
    'miou_curve', 'noc', 'nof', 'NoCMetric'
]
