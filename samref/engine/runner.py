# Copyright (c) samref contributors. All rights reserved.
from typing import Callable, Union

from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..utils.checkpoint import (checkpoint_key_report, format_key_report,
                                trusted_checkpoints)


@RUNNERS.register_module()
class SafeLoadRunner(Runner):
    """mmengine's ``Runner`` under the toolbox's checkpoint policy.

    Every checkpoint it loads goes through a weights-only load (see
    :mod:`samref.utils.checkpoint`), except when it resumes training: the
    file it resumes from is its own, written into the work directory, and is
    fully unpickled so that optimizer, scheduler and message-hub states come
    back exactly. After loading it logs which weights were new, unexpected
    or of another shape, by module (e.g. the refiners, when SAM-REF starts
    from a SAM checkpoint).
    """

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """Load weights (see ``Runner.load_checkpoint``) and log what
        differed.

        Args:
            filename (str): The checkpoint.
            map_location (str | Callable): Where to map the tensors.
            strict (bool): Fail on any difference. Defaults to False.
            revise_keys (list): ``(pattern, replacement)`` key rewrites.

        Returns:
            dict: The loaded checkpoint.
        """
        checkpoint = super().load_checkpoint(filename, map_location, strict,
                                             revise_keys)
        model = getattr(self.model, 'module', self.model)
        self.logger.info(f'weights from {filename}: ' + format_key_report(
            checkpoint_key_report(model, checkpoint.get(
                'state_dict', checkpoint))))
        return checkpoint

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
