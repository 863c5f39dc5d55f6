# Demo stage 2: SAM-REF's refiners on the generated shapes, everything of
# SAM frozen, starting from the demo's stage-1 checkpoint. Recipe choices
# for refiners trained from random weights
# (docs/en/notes/demo_recipe.md):
# - the error maps start near 0 (error_prior, a logit bias of -4), so the
#   refiners start from SAM's masks;
# - a Dice term on GlobalDiff's refined logits keeps them from shrinking
#   SAM's first-click masks, which the focal loss alone rewards;
# - a BCE term on GlobalDiff's detail map: equation (3) reaches it only
#   through the error gate, which leaves it untrained where the gate is
#   nearly closed, and the soft blend still lets a wrong detail map flip
#   SAM's pixels there;
# - no Dice term on GlobalDiff's error map, which opens the gate on the
#   uncertain band on both sides of SAM's border, and twice the weight on
#   its BCE term, which keeps the gate shut where SAM is right.
_base_ = [
    '../_base_/models/samref_vit-b.py', '../_base_/datasets/shapes_256.py',
    '../_base_/schedules/schedule_demo.py', '../_base_/default_runtime.py',
    '../_base_/models/sam_tiny_p8_256.py'
]
model = dict(
    data_preprocessor={{_base_.sam_tiny_p8.data_preprocessor}},
    image_encoder={{_base_.sam_tiny_p8.image_encoder}},
    prompt_encoder={{_base_.sam_tiny_p8.prompt_encoder}},
    mask_decoder={{_base_.sam_tiny_p8.mask_decoder}},
    # The box prompt in the refiners' prompt maps, and a quarter of the
    # samples starting with a jittered box, as in stage 1.
    train_cfg=dict(
        click_sampler=dict(
            max_extra_clicks=10, box_prob=0.25, box_max_noise=5.0)),
    box_channel=True,
    global_refiner=dict(embed_channels=128, embed_stride=8, error_prior=0.018),
    patch_refiner=dict(patch_size=64, disk_radius=2.0, error_prior=0.018),
    disk_radius=1.0,
    patch_min_size=8.0,
    # Equation (3) without the Dice term of GlobalDiff's error map and with
    # twice the weight on its BCE term, plus a Dice term on GlobalDiff's
    # refined logits and a BCE term on its detail map.
    losses=dict(
        _delete_=True,
        decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl'),
        global_error_bce=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_weight=2.0,
            loss_name='loss_bce_global'),
        global_refined=dict(
            type='NormalizedFocalLoss',
            error_weight=1.5,
            loss_name='loss_bnfl_global'),
        global_refined_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            loss_name='loss_dice_refined_global'),
        global_detail_bce=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_name='loss_bce_detail_global'),
        patch_error_dice=dict(
            type='DiceLoss', use_sigmoid=True, loss_name='loss_dice_patch'),
        patch_error_bce=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_name='loss_bce_patch'),
        patch_refined=dict(
            type='NormalizedFocalLoss',
            error_weight=1.5,
            loss_name='loss_bnfl_patch')))
load_from = 'work_dirs/demo/stage1/iter_600.pth'
# 600 iterations, about three minutes on two cores (two processes).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=30,
        end=600),
]
train_cfg = dict(max_iters=600, val_interval=600)
default_hooks = dict(checkpoint=dict(interval=600))
