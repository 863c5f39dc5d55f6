default_scope = 'mmseg'
custom_imports = dict(imports=['samref'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
    # glibc keeps every freed host buffer (up to 2 GiB each) and its free
    # heap for reuse instead of returning them to the system: a CPU training
    # step and a ViT encoder's global attention then stop faulting in fresh
    # pages (ViT-B's encoder 1.4-1.6x faster on 2 cores, the demo's stage-1
    # steps 6-9 %, docs/en/notes/speed.md#host-memory-on-the-cpu;
    # samref.utils.set_malloc_thresholds). None leaves malloc as it is.
    malloc_cfg=dict(mmap_threshold=2**31 - 1, trim_threshold=-1),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
runner_type = 'SafeLoadRunner'
# Seeds numpy, torch and the dataloader workers: the training clicks are
# drawn from these generators, so a seeded run repeats them. Each rank gets
# seed + rank, so that the ranks of a distributed run draw different extra
# clicks, refine steps and expand ratios instead of the same ones.
randomness = dict(seed=0, diff_rank_seed=True)
# SAM computes outputs that no loss of a stage uses (the IoU head, the
# multimask tokens), so distributed training must allow parameters without
# gradient.
find_unused_parameters = True
