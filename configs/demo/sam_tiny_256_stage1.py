# Demo stage 1: SAM (tiny encoder, 256 x 256 input) on the generated shapes.
# There are no pretrained weights here, so unlike the real stage 1 (which
# freezes SAM's image encoder) the random encoder trains with the decoder.
# Three recipe choices for training SAM from random weights (measured in the
# README, "Training from scratch"):
# - every attention layer of the mask decoder starts with its key projection
#   tied to its query projection (MimeticAttention), so that a click token
#   attends to the image positions whose positional encoding matches its own
#   from the start; with independent random projections the decoder predicts
#   background everywhere for hundreds of iterations;
# - a Dice term next to NFL, which keeps the thin objects from collapsing to
#   empty masks;
# - a loss on the image embeddings (PrototypeSimilarityLoss): the cells of
#   the annotated object must resemble each other and not the rest of the
#   picture. Without it the decoder learns where the clicks are and ignores
#   what is under them (its masks are the same on a blank picture).
_base_ = [
    '../_base_/models/sam_vit-b.py', '../_base_/datasets/shapes_256.py',
    '../_base_/schedules/schedule_demo.py', '../_base_/default_runtime.py'
]
# The small SAM: an image encoder with 8-pixel patches (a 32 x 32 token
# grid; two blocks of windowed attention, 16 x 16 tokens a window) and a
# 128-wide mask decoder. With SAM's 16-pixel patches a mask is decided per
# 16 x 16 cell, which caps the demo's objects at 67 mIoU even when every
# cell is right; 8-pixel patches lift that cap to 85, and the narrower
# decoder pays for the four times as many tokens.
model = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(
        arch=dict(
            _delete_=True,
            embed_dim=64,
            depth=2,
            num_heads=2,
            global_attn_indexes=()),
        img_size=256,
        patch_size=8,
        window_size=16,
        out_channels=128),
    prompt_encoder=dict(
        embed_dim=128,
        image_embedding_size=(32, 32),
        input_image_size=(256, 256)),
    mask_decoder=dict(transformer_dim=128, iou_head_hidden_dim=128),
    train_cfg=dict(click_sampler=dict(max_extra_clicks=10)),
    frozen_modules=('prompt_encoder', ),
    losses=dict(
        decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl'),
        decoder_dice=dict(
            type='DiceLoss', use_sigmoid=True, loss_name='loss_dice'),
        encoder=dict(type='PrototypeSimilarityLoss', loss_weight=0.3)),
    init_cfg=dict(
        type='MimeticAttention', layer=[],
        override=dict(name='mask_decoder')))
# 600 iterations (the masks follow the clicks from about iteration 150),
# what make demo's ten minutes allow with the 32 x 32 token grid.
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
