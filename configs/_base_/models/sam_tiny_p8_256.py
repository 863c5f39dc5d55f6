# The demo's small SAM at a 256 x 256 input (docs/en/notes/demo_recipe.md):
# an image encoder with 8-pixel patches (a 32 x 32 token grid; two blocks
# of windowed attention, 16 x 16 tokens a window) and a 128-wide mask
# decoder. With SAM's 16-pixel patches a mask is decided per
# 16 x 16 cell, which caps the demo's objects at 67 mIoU even when every
# cell is right; 8-pixel patches lift that cap to 85, and the narrower
# decoder pays for the four times as many tokens. The configs that train
# or refine this SAM take its parts, e.g.
# image_encoder={{_base_.sam_tiny_p8.image_encoder}}.
sam_tiny_p8 = dict(
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
    mask_decoder=dict(transformer_dim=128, iou_head_hidden_dim=128))
