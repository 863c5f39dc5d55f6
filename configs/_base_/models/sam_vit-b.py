# SAM with the ViT-B image encoder; official weights: sam_vit_b_01ec64.pth.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # SAM's pixel mean/std (RGB, 0..255); images are padded bottom/right
    # with zeros after normalisation, to 1024 x 1024.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(1024, 1024),
    test_cfg=dict(size=(1024, 1024)))
model = dict(
    type='SAM',
    data_preprocessor=data_preprocessor,
    image_encoder=dict(type='SAMImageEncoder', arch='base', img_size=1024),
    prompt_encoder=dict(
        type='SAMPromptEncoder',
        embed_dim=256,
        image_embedding_size=(64, 64),
        input_image_size=(1024, 1024),
        mask_in_chans=16),
    mask_decoder=dict(
        type='SAMMaskDecoder',
        transformer_dim=256,
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=256),
    # Training clicks (InterFormer/FocSAM): first click at the object's
    # centre, n ~ gamma^n extra clicks simulated without gradient.
    train_cfg=dict(
        click_sampler=dict(
            type='IterativeClickSampler',
            max_extra_clicks=20,
            margin_ratio=1.7)),
    # 'single': mask token 0 at every click (FocSAM); 'best_iou': multimask
    # output, the mask with the best predicted IoU (SegNext).
    mask_output='single')
