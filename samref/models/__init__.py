# Copyright (c) samref contributors. All rights reserved.
from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .utils import IterativeClickSampler  # noqa: F401
