# FocSAM's stage 2 on the demo's generated shapes (make demo): the tiny SAM
# of configs/demo/sam_tiny_256_stage1.py frozen, the focus refiner trained.
# With a 16 x 16 embedding the focus windows are 4 x 4 cells (16 windows);
# two blocks (a plain and a shifted one) keep the refiner smaller than the
# tiny SAM it starts from.
#   python tools/train.py configs/focsam/focsam_vit-tiny_256_shapes.py \
#       --cfg-options load_from=work_dirs/demo/stage1/iter_800.pth
_base_ = [
    '../_base_/models/focsam_vit-b.py', '../_base_/datasets/shapes_256.py',
    '../_base_/schedules/schedule_demo.py', '../_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(size=(256, 256), test_cfg=dict(size=(256, 256))),
    image_encoder=dict(arch='tiny', img_size=256),
    prompt_encoder=dict(
        image_embedding_size=(16, 16), input_image_size=(256, 256)),
    train_cfg=dict(click_sampler=dict(max_extra_clicks=10)),
    refiner=dict(depth=2, window_size=4))
load_from = 'work_dirs/demo/stage1/iter_800.pth'
