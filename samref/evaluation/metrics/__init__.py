# Copyright (c) samref contributors. All rights reserved.
from .noc_metric import NoCMetric

__all__ = ['NoCMetric']
