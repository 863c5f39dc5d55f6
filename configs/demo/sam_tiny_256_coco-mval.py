# Real pictures (make demo-real): the demo's SAM, trained by `make demo` on
# the generated shapes, trained further on the real COCO-MVal copy (800
# objects) and evaluated on the real GrabCut copy (50 objects), both at a
# 256 x 256 input. The data roots are the shared copies next to the
# repository; another place: --cfg-options
# train_dataloader.dataset.data_root=... test_dataloader.dataset.data_root=...
# lr 2e-4 (the shapes' 1e-3 makes the decoder unlearn to predict any object
# within 75 iterations: Dice 0.56 -> 0.75; see
# docs/en/notes/demo_recipe.md).
_base_ = ['./sam_tiny_256_stage1.py']
train_dataloader = dict(
    dataset=dict(
        data_root='../shared/data/COCO_MVal', dataset_name='COCO-MVal'))
test_dataloader = dict(
    dataset=dict(
        type='GrabCutDataset',
        data_root='../shared/data/GrabCut',
        dataset_name='GrabCut'))
val_dataloader = None
val_evaluator = None
val_cfg = None
optim_wrapper = dict(optimizer=dict(lr=2e-4))
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
train_cfg = dict(max_iters=600)
default_hooks = dict(checkpoint=dict(interval=600))
load_from = 'work_dirs/demo/stage1/iter_600.pth'
