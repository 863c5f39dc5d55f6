# FocSAM's stage 2 on the demo's generated shapes (make demo): the tiny SAM
# of configs/demo/sam_tiny_256_stage1.py frozen, the focus refiner trained.
# With the demo SAM's 32 x 32 x 128 embedding the focus windows are 8 x 8
# cells (16 windows); two blocks (a plain and a shifted one) keep the
# refiner smaller than the tiny SAM it starts from.
#   python tools/train.py configs/focsam/focsam_vit-tiny_256_shapes.py \
#       --cfg-options load_from=work_dirs/demo/stage1/iter_600.pth
_base_ = [
    '../_base_/models/focsam_vit-b.py', '../_base_/datasets/shapes_256.py',
    '../_base_/schedules/schedule_demo.py', '../_base_/default_runtime.py',
    '../_base_/models/sam_tiny_p8_256.py'
]
model = dict(
    data_preprocessor={{_base_.sam_tiny_p8.data_preprocessor}},
    image_encoder={{_base_.sam_tiny_p8.image_encoder}},
    prompt_encoder={{_base_.sam_tiny_p8.prompt_encoder}},
    mask_decoder={{_base_.sam_tiny_p8.mask_decoder}},
    train_cfg=dict(click_sampler=dict(max_extra_clicks=10)),
    refiner=dict(embed_dims=128, depth=2, window_size=8))
load_from = 'work_dirs/demo/stage1/iter_600.pth'
