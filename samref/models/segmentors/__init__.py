# Copyright (c) samref contributors. All rights reserved.
from .base import BaseInteractiveSegmentor, logits_to_original
from .focsam import FocSAM
from .interaction import Interaction
from .sam import SAM
from .samref import SAMRef

__all__ = [
    'BaseInteractiveSegmentor', 'FocSAM', 'Interaction', 'SAM', 'SAMRef',
    'logits_to_original'
]
