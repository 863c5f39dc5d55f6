# FocSAM's schedule, which SAM-REF adopts "in the same settings" (SAM-REF,
# 4.1.3): AdamW, lr 1e-4, a linear warm-up over 1500 iterations starting
# at 1e-6 x lr (LinearLR start_factor 1e-6, as in every
# optimizer_adamw_*.py of FocSAM's code; SAM-REF's paper states no
# warm-up of its own), then poly decay (power 1) to 0; 320k iterations.
optimizer = dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=1500,
        end=320000),
]
# Interactive validation (val_cfg of the dataset configs) with each
# checkpoint; the best by NoC90 is kept besides the last three.
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=320000, val_interval=8000)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=8000,
        max_keep_ckpts=3,
        save_best='NoC90',
        rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
