# SAM-REF on SAM ViT-B: SAM -> GlobalDiff -> Dynamic Patch Selector ->
# PatchDiff. The refiners' weights are new; load SAM (or a stage-1
# checkpoint) with load_from and train them (configs/samref).
# The refiners use instance norm: a training step refines one sample per
# forward (each has its own clicks), so BatchNorm would learn single-image
# statistics and test with running averages
# (docs/en/notes/demo_recipe.md#the-refiners-normalisation).
# The refiners' widths and GlobalDiff's depth are ours: GlobalDiff's 32
# channels cost a quarter of 64's per click and were no less accurate on
# make demo's data, PatchDiff's 16 were within 0.5 points of 32, and two
# ResBasicBlocks (the paper's Table 4 picks three, in
# configs/samref/ablations) cost two thirds of three's and were as accurate
# on make demo's data (docs/en/notes/speed.md#globaldiffs-width).
_base_ = ['./sam_vit-b.py']
model = dict(
    type='SAMRef',
    global_refiner=dict(
        type='GlobalDiffRefiner',
        channels=32,
        embed_channels=256,
        num_blocks=2,
        reduce_channels=16,
        image_kernel=7,
        norm_cfg=dict(type='ChannelGroupNorm')),
    patch_refiner=dict(
        type='PatchDiffRefiner',
        feat_channels=32,
        channels=16,
        patch_size=256,
        num_blocks=1,
        disk_radius=5.0,
        norm_cfg=dict(type='ChannelGroupNorm')),
    use_global=True,
    use_patch=True,
    use_selector=True,
    disk_radius=2.0,
    patch_expand_ratio=1.4,
    patch_min_size=16.0,
    # Equation (3). Everything of SAM is frozen while the refiners train, so
    # the decoder term is logged but gives no gradient.
    frozen_modules=('image_encoder', 'prompt_encoder', 'mask_decoder'),
    losses=dict(
        decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl'),
        global_error_dice=dict(
            type='DiceLoss', use_sigmoid=True, loss_name='loss_dice_global'),
        global_error_bce=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            avg_non_ignore=True,
            loss_name='loss_bce_global'),
        global_refined=dict(
            type='NormalizedFocalLoss',
            error_weight=1.5,
            loss_name='loss_bnfl_global'),
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
