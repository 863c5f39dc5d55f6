# Copyright (c) samref contributors. All rights reserved.
import os.path as osp
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple, Union

from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from mmseg.registry import RUNNERS
from torch import nn
from torch.utils.data import DataLoader

from ..utils.dist import prepare_cpu_distributed
from ..utils.host_memory import apply_malloc_cfg
from ..utils.safe_load import load_checkpoint_file, resolve_checkpoint
from ..utils.weights import format_key_report, load_model_weights
from .embedding_check_hook import EmbeddingCheckHook
from .portable_checkpoint_hook import PortableCheckpointHook


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


class FormattedOnceConfig(Config):
    """A ``Config`` that formats its text once for each content.

    mmengine formats the whole config with yapf wherever it shows it: the
    run's log, the message hub, the dumped config, the visualiser's copy
    and every checkpoint, five times or more for a training run of the
    same config. The text is kept with the content it was made for and
    made again only when the content changed.
    """

    @property
    def pretty_text(self) -> str:
        """The formatted config text (see ``Config.pretty_text``)."""
        content = repr(self._cfg_dict.to_dict())
        cached = self.__dict__.get('_formatted')
        if cached is None or cached[0] != content:
            cached = (content, super().pretty_text)
            object.__setattr__(self, '_formatted', cached)
        return cached[1]


def restarting_batches(dataloader: DataLoader) -> Iterator:
    """The dataloader's batches, started over at its end with the
    sampler's next epoch, as ``IterBasedTrainLoop`` iterates them; a
    generator, so the first batch (and the worker processes) is made at the
    first ``next``, not before.

    Raises:
        RuntimeError: A pass over the dataloader yields no batch, e.g. with
            mmengine's ``InfiniteSampler``, whose indices can be iterated
            once only.
    """
    epoch = 0
    while True:
        empty = True
        for batch in dataloader:
            empty = False
            yield batch
        if empty:
            raise RuntimeError(
                'the training dataloader yields no batch (an InfiniteSampler '
                'iterates once only): build a new runner to train further')
        epoch += 1
        if hasattr(getattr(dataloader, 'sampler', None), 'set_epoch'):
            dataloader.sampler.set_epoch(epoch)


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
    """mmengine's ``Runner`` under the toolbox's loading policy.

    Every checkpoint it loads, for ``load_from`` as when it resumes
    training, is read under the toolbox's loading policy (see
    :mod:`samref.utils.safe_load`): the checkpoints it writes hold tensors
    and plain data only (:class:`PortableCheckpointHook`), so optimizer,
    scheduler and message-hub states come back without unpickling anything
    else, and a checkpoint of another mmengine project loads its weights
    only with ``drop_foreign_objects``. After loading it logs which
    weights were new, unexpected or of another shape, by module (e.g. the
    refiners, when SAM-REF starts from a SAM checkpoint); a checkpoint that
    provides less than half of the model's weights is an error, and with
    ``strict_load`` any difference is.

    ``env_cfg.malloc_cfg`` (``mmap_threshold``, ``trim_threshold``) sets
    glibc's ``malloc`` thresholds for the process
    (:func:`~samref.utils.set_malloc_thresholds`), so that a CPU training
    step reuses its freed buffers instead of faulting in fresh pages.

    It also checks pre-extracted embeddings against the model before
    training (:class:`EmbeddingCheckHook`) and writes checkpoints that a
    plain weights-only ``torch.load`` reads (:class:`PortableCheckpointHook`),
    each added when the config has none.

    Args:
        *args: As for ``Runner``.
        strict_load (bool): Fail when a loaded checkpoint differs from the
            model in any key or shape. Defaults to False; a config sets it
            with ``strict_load = True``.
        drop_foreign_objects (bool): Load checkpoints that hold objects
            beyond tensors and plain data (numpy values, history buffers of
            another mmengine project) with those objects replaced by inert
            placeholders, instead of refusing them. Defaults to False; a
            config sets it with ``drop_foreign_objects = True``, the tools
            with ``--drop-foreign-objects``.
        **kwargs: As for ``Runner``.
    """

    def __init__(self,
                 *args,
                 strict_load: bool = False,
                 drop_foreign_objects: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.strict_load = strict_load
        self.drop_foreign_objects = drop_foreign_objects
        for hook_type in (EmbeddingCheckHook, PortableCheckpointHook):
            if not any(isinstance(hook, hook_type) for hook in self.hooks):
                self.register_hook(hook_type())

    @classmethod
    def from_cfg(cls, cfg: Union[dict, Config,
                                 ConfigDict]) -> 'SafeLoadRunner':
        """Build the runner of a config (see ``Runner.from_cfg``), with its
        ``strict_load`` and ``drop_foreign_objects`` settings.

        Args:
            cfg (dict | Config | ConfigDict): The config.

        Returns:
            SafeLoadRunner: The runner.
        """
        if isinstance(cfg, Config):
            formatted = FormattedOnceConfig.__new__(FormattedOnceConfig)
            formatted.__dict__.update(cfg.__dict__)
            cfg = formatted
        runner = super().from_cfg(cfg)
        runner.strict_load = bool(cfg.get('strict_load', False))
        runner.drop_foreign_objects = bool(
            cfg.get('drop_foreign_objects', False))
        return runner

    def setup_env(self, env_cfg: Dict) -> None:
        """``env_cfg.malloc_cfg``, then mmengine's environment setup.

        Args:
            env_cfg (dict): The config's ``env_cfg``.
        """
        apply_malloc_cfg(env_cfg)
        super().setup_env(env_cfg)

    def train(self) -> nn.Module:
        """Train the model (see ``Runner.train``), then stop the training
        dataloader's worker processes.

        ``IterBasedTrainLoop`` keeps its dataloader iterator, whose workers
        prefetch batches, for as long as the loop lives, and the runner and
        its loops are in reference cycles: the iterator goes with the next
        run of the garbage collector, and torch's shutdown of the workers
        from within the collector waits its full 5-second status interval
        for each worker before it terminates them (10 s for the demo
        configs' 2 workers; 0.03 s outside the collector). The iterator is
        dropped here instead; should the loop run again, it starts the
        batches anew (:func:`restarting_batches`).

        Returns:
            nn.Module: The trained model.
        """
        try:
            return super().train()
        finally:
            loop = self._train_loop
            if hasattr(loop, 'dataloader_iterator'):
                loop.dataloader_iterator = restarting_batches(loop.dataloader)

    def build_dataloader(self,
                         dataloader: Union[DataLoader, dict],
                         seed: Optional[int] = None,
                         diff_rank_seed: bool = False) -> DataLoader:
        """mmengine's dataloader, with the configured seed for the sampler.

        With ``randomness.diff_rank_seed`` each rank draws its own clicks
        and augmentations (seed + rank), and mmengine leaves the sampler's
        seed to chance (synchronised across the ranks, different in every
        run), so a seeded run would not repeat its data order. Here the
        sampler gets ``randomness.seed``, the same on every rank, unless its
        config names a seed.

        Args:
            dataloader (DataLoader | dict): A dataloader or its config.
            seed (int, optional): The runner's seed (+ rank).
            diff_rank_seed (bool): Whether ranks have different seeds.

        Returns:
            DataLoader: The dataloader.
        """
        sampler = dataloader.get('sampler') if isinstance(dataloader,
                                                          dict) else None
        base_seed = self._randomness_cfg.get('seed')
        if diff_rank_seed and isinstance(sampler, dict) and \
                'seed' not in sampler and base_seed is not None:
            dataloader = dict(
                dataloader, sampler=dict(sampler, seed=base_seed))
        return super().build_dataloader(dataloader, seed, diff_rank_seed)

    def load_checkpoint(
        self,
        filename: str,
        map_location: Union[str, Callable] = 'cpu',
        strict: bool = False,
        revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), )
    ) -> dict:
        """Load weights (see ``Runner.load_checkpoint``) and log what
        differed.

        ``Runner.resume`` reads the checkpoint through this method too.

        Args:
            filename (str): The checkpoint: a local file or an ``http(s)``
                URL.
            map_location (str | Callable): Where to map the tensors.
            strict (bool): Fail on any difference (so does
                ``strict_load``). Defaults to False.
            revise_keys (Sequence[tuple[str, str]]): ``(pattern,
                replacement)`` key rewrites. Defaults to removing the
                ``module.`` prefix of wrapped models.

        Returns:
            dict: The loaded checkpoint.
        """
        checkpoint = load_checkpoint_file(
            resolve_checkpoint(filename),
            map_location=map_location,
            drop_foreign_objects=self.drop_foreign_objects)
        if not isinstance(checkpoint, dict):
            raise RuntimeError(f'{filename} holds no checkpoint dict')
        meta = checkpoint.get('meta')
        if isinstance(meta, dict) and 'config' in meta:
            # mmengine's resume would parse this old-style config text as a
            # Python config, i.e. run it; its only use is a GPU-count check.
            meta.pop('config')
            self.logger.warning(
                f'{filename}: ignored the config text stored in its meta '
                '(parsing it would run code from the file)')
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = getattr(self.model, 'module', self.model)
        report = load_model_weights(model, checkpoint, strict
                                    or self.strict_load, revise_keys, filename)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}: '
                         f'{format_key_report(report)}')
        return checkpoint
