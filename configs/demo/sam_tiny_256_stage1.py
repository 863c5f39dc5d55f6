# Demo stage 1: SAM (tiny encoder, 256 x 256 input) on the generated shapes.
# There are no pretrained weights here, so unlike the real stage 1 (which
# freezes SAM's image encoder) the random encoder trains with the decoder.
# Three recipe choices for training SAM from random weights
# (docs/en/notes/demo_recipe.md):
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
    '../_base_/schedules/schedule_demo.py', '../_base_/default_runtime.py',
    '../_base_/models/sam_tiny_p8_256.py'
]
# The small SAM with 8-pixel patches: configs/_base_/models/sam_tiny_p8_256.py.
model = dict(
    data_preprocessor={{_base_.sam_tiny_p8.data_preprocessor}},
    image_encoder={{_base_.sam_tiny_p8.image_encoder}},
    prompt_encoder={{_base_.sam_tiny_p8.prompt_encoder}},
    mask_decoder={{_base_.sam_tiny_p8.mask_decoder}},
    # A quarter of the samples start with a jittered box of the object, as
    # SAM trains (box_max_noise: SAM's 20 pixels at 1024, here at 256).
    train_cfg=dict(
        click_sampler=dict(
            max_extra_clicks=10, box_prob=0.25, box_max_noise=5.0)),
    frozen_modules=('prompt_encoder', ),
    losses=dict(
        decoder=dict(type='NormalizedFocalLoss', loss_name='loss_nfl'),
        decoder_dice=dict(
            type='DiceLoss', use_sigmoid=True, loss_name='loss_dice'),
        encoder=dict(type='PrototypeSimilarityLoss', loss_weight=0.3)),
    init_cfg=dict(
        type='MimeticAttention', layer=[], override=dict(name='mask_decoder')))
# 600 iterations (the masks follow the clicks from about iteration 150),
# what make demo's eight minutes allow with the 32 x 32 token grid.
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
