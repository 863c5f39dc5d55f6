# Copyright (c) samref contributors. All rights reserved.
from .miou_curve import plot_miou_curves

__all__ = ['plot_miou_curves']
