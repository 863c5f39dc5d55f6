# Demo stage 2: SAM-REF's refiners on the generated shapes, everything of
# SAM frozen, starting from the demo's stage-1 checkpoint. The error maps
# start near 0 (error_prior, a logit bias of -4), so the refiners start from
# SAM's masks, and a Dice term on GlobalDiff's refined logits keeps them
# from shrinking SAM's first-click masks, which the focal loss alone
# rewards (README, "Training from scratch").
_base_ = [
    '../_base_/models/samref_vit-b.py', '../_base_/datasets/shapes_256.py',
    '../_base_/schedules/schedule_demo.py', '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(arch='tiny', img_size=256),
    prompt_encoder=dict(
        image_embedding_size=(16, 16), input_image_size=(256, 256)),
    train_cfg=dict(click_sampler=dict(max_extra_clicks=10)),
    global_refiner=dict(channels=32, reduce_channels=16, error_prior=0.018),
    patch_refiner=dict(
        feat_channels=32,
        channels=16,
        patch_size=64,
        disk_radius=2.0,
        error_prior=0.018),
    disk_radius=1.0,
    patch_min_size=8.0,
    losses=dict(
        global_refined_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            loss_name='loss_dice_refined_global')))
load_from = 'work_dirs/demo/stage1/iter_800.pth'
# 450 iterations, about three minutes on two cores.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=30,
        end=450),
]
train_cfg = dict(max_iters=450, val_interval=450)
