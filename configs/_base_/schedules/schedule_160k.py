# The 320k schedule's optimiser and warm-up (from 1e-6 x lr, as FocSAM's
# code), 160k iterations (FocSAM's stage 2, optimizer_adamw_160k.py).
_base_ = ['./schedule_320k.py']
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=1500,
        end=160000),
]
train_cfg = dict(max_iters=160000)
