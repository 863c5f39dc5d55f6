# Copyright (c) samref contributors. All rights reserved.
from typing import Callable, Union

from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..utils.checkpoint import trusted_checkpoints


@RUNNERS.register_module()
class SafeLoadRunner(Runner):
    """mmengine's ``Runner`` under the toolbox's checkpoint policy.

    Every checkpoint it loads goes through a weights-only load (see
    :mod:`samref.utils.checkpoint`), except when it resumes training: the
    file it resumes from is its own, written into the work directory, and is
    fully unpickled so that optimizer, scheduler and message-hub states come
    back exactly.
    """

    def resume(self,
               filename: str,
               resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """Resume training from a checkpoint of this toolbox.

        Args:
            filename (str): The checkpoint, usually in the work directory.
            resume_optimizer (bool): Restore the optimizer state.
                Defaults to True.
            resume_param_scheduler (bool): Restore the schedulers' states.
                Defaults to True.
            map_location (str | Callable): Where to map the tensors.
                Defaults to ``'default'`` (the current device).
        """
        with trusted_checkpoints():
            super().resume(filename, resume_optimizer, resume_param_scheduler,
                           map_location)
