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
model = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(arch='tiny', img_size=256),
    prompt_encoder=dict(
        image_embedding_size=(16, 16), input_image_size=(256, 256)),
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
# 800 iterations (the masks follow the clicks from about iteration 150).
# 1100 did not fit make demo's ten minutes (10m21s) and moved little.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=30,
        end=800),
]
train_cfg = dict(max_iters=800, val_interval=400)
default_hooks = dict(checkpoint=dict(interval=800))
