# Copyright (c) samref contributors. All rights reserved.
from .base import DatasetLayoutError, InteractiveSegDataset
from .berkeley import BerkeleyDataset
from .coco_lvis import COCOLVISDataset
from .coco_mval import COCOMValDataset
from .davis import DAVISDataset
from .focuscut import FocusCutDataset
from .grabcut import GrabCutDataset
from .hqseg import HQSEG_TRAIN_PARTS, HQSEG_VAL_PARTS, HQSeg44KDataset
from .instance_list import InstanceListDataset
from .pascal_voc import PascalVOCInstanceDataset
from .sbd import SBDDataset
from .synthetic import draw_ring_with_bar, make_shapes_dataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'DatasetLayoutError', 'InteractiveSegDataset', 'InstanceListDataset',
    'BerkeleyDataset', 'COCOLVISDataset', 'COCOMValDataset', 'DAVISDataset',
    'FocusCutDataset', 'GrabCutDataset', 'HQSeg44KDataset', 'HQSEG_VAL_PARTS',
    'HQSEG_TRAIN_PARTS', 'PascalVOCInstanceDataset', 'SBDDataset',
    'draw_ring_with_bar', 'make_shapes_dataset'
]
