# FocSAM on SAM ViT-B: SAM whose image embedding is refined once, at the
# second click, by FocSAM's focus refiner (the sizes of the released ViT-H
# model). The refiner's weights are new; load a stage-1 checkpoint with
# load_from and train it (configs/focsam), or convert FocSAM's release
# (tools/model_converters/focsam2samref.py).
_base_ = ['./sam_vit-b.py']
model = dict(
    type='FocSAM',
    # FocSAM's code pads the ground truth with 0 (seg_pad_val=0): the
    # padding to 1024 x 1024 is background for its losses and its click
    # simulation (SAM and SAM-REF pad with 255, ignored). Colour order is
    # kept at RGB, as SAM's encoder was trained: FocSAM's code apparently
    # fed BGR, which bgr_to_rgb=False reproduces (focsam_vit-h_bgr-input.py;
    # train both stages and their embedding cache the same way).
    data_preprocessor=dict(seg_pad_val=0),
    refiner=dict(
        type='FocSAMRefiner',
        embed_dims=256,
        depth=12,
        num_heads=8,
        mlp_ratio=4.0,
        window_size=16,
        expand_ratio=1.4,
        # In training the focus box's height and width scalings are drawn
        # from this range once per simulated group and once for the
        # gradient pass of a batch (FocSAM.loss). The deformable
        # convolutions start as in FocSAM's code: PyTorch's default for the
        # offset convolution, a normal kernel (std 0.028).
        train_expand_range=(1.0, 1.4)),
    # 0-based: the embedding is refined at the second click (K = 2).
    refine_step=1,
    # The refine click of a training sample: P(r) ~ refine_gamma^r over its
    # simulated clicks; FocSAM's interact_params give 0.6 for COCO and 0.35
    # for LVIS (the samples' source metainfo). As in FocSAM's code, the
    # samples of one source in a batch share the number of extra clicks,
    # the refine click and the focus box scaling of their simulation, and
    # the gradient pass draws one scaling for the batch (FocSAM.loss).
    train_cfg=dict(refine_gamma=0.6, refine_gamma_by_source=dict(lvis=0.35)),
    # Stage 2: everything of SAM frozen, only the refiner trains, with the
    # normalized focal loss of the decoder's logits on the refined embedding
    # (averaged over the samples) and the click loss (PTL, averaged over
    # the valid clicks of the batch, as FocSAM's clk_loss).
    frozen_modules=('image_encoder', 'prompt_encoder', 'mask_decoder'),
    losses=dict(
        # eps: float32's machine epsilon, FocSAM's NFL default (ours is
        # 1e-12); it caps log(pt + eps) of confidently wrong pixels.
        decoder=dict(
            type='NormalizedFocalLoss',
            loss_name='loss_nfl',
            eps=1.1920928955078125e-07),
        click=dict(type='ClickLoss', loss_name='loss_click')))
