# Copyright (c) samref contributors. All rights reserved.
from .runner import SafeLoadRunner

__all__ = ['SafeLoadRunner']
