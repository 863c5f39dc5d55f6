# Copyright (c) samref contributors. All rights reserved.
import torch.distributed as torch_dist

from samref.utils import release_process_group


def test_release_destroys_the_group_and_is_safe_without_one(tmp_path):
    release_process_group()  # no group: nothing to do
    torch_dist.init_process_group(
        backend='gloo',
        init_method=f'file://{tmp_path / "store"}',
        rank=0,
        world_size=1)
    try:
        assert torch_dist.is_initialized()
        release_process_group()
        assert not torch_dist.is_initialized()
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
