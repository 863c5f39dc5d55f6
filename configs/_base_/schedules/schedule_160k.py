# The 320k schedule's optimiser and warm-up, 160k iterations (FocSAM's
# stage 2).
_base_ = ['./schedule_320k.py']
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=1500,
        end=160000),
]
train_cfg = dict(max_iters=160000)
