# Copyright (c) samref contributors. All rights reserved.
from .sam_image_encoder import SAMImageEncoder

__all__ = ['SAMImageEncoder']
