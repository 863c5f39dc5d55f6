# Copyright (c) samref contributors. All rights reserved.
from .base import BaseInteractiveSegmentor
from .sam import SAM

__all__ = ['BaseInteractiveSegmentor', 'SAM']
