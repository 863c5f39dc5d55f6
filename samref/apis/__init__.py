# Copyright (c) samref contributors. All rights reserved.
from .inference import InteractivePredictor, init_model

__all__ = ['InteractivePredictor', 'init_model']
