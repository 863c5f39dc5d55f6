# Copyright (c) samref contributors. All rights reserved.
import os.path as osp
from typing import Callable, Optional, Union

from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import RUNNERS

from ..utils.checkpoint import (format_key_report, load_model_weights,
                                trusted_checkpoints)
from ..utils.dist import prepare_cpu_distributed


def job_config(config: str,
               launcher: str = 'none',
               cfg_options: Optional[dict] = None,
               work_dir: Optional[str] = None) -> Config:
    """A config with the settings of a command line applied, as the tools
    need it.

    Args:
        config (str): The config file.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        cfg_options (dict, optional): Overrides.
        work_dir (str, optional): The work directory; the config's, or
            ``./work_dirs/<config name>``, when None.

    Returns:
        Config: The config.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the config's runner (``runner_type``, else mmengine's), ready
    for a distributed launch on machines without a GPU too.

    Args:
        cfg (Config): The config, ``launcher`` set.

    Returns:
        Runner: The runner.
    """
    prepare_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


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
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        report = load_model_weights(
            getattr(self.model, 'module', self.model), checkpoint, strict,
            revise_keys, filename)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}: '
                         f'{format_key_report(report)}')
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
