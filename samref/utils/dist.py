# Copyright (c) samref contributors. All rights reserved.
import socket

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def prepare_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` run on machines without a GPU.

    mmengine's pytorch launcher selects a CUDA device and wraps the model in
    DDP with CUDA ``device_ids``. Without a GPU this starts the gloo process
    group itself (from torchrun's environment; mmengine then keeps it) and
    wraps the model with ``device_ids=None``. Nothing changes when a GPU is
    present or the job is not distributed.

    Args:
        cfg (Config): The config, with ``launcher`` set; updated in place.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = \
        'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')


def release_process_group() -> None:
    """Destroy the default process group, when one was started.

    A launcher-started tool calls this as its last step. Left to the
    interpreter's exit, the group's background threads can still be
    running when the process ends, and the worker then aborts after its
    work is done ("terminate called without an active exception", exit
    code -6), which fails the whole torchrun job. The ranks first wait for
    each other, so that none tears its group down while another still
    exchanges results with it.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (for a process
    group's or a server's address; another process may take it before the
    caller binds it)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
