# Real pictures (make demo-real), stage 2: SAM-REF's refiners trained on the
# real COCO-MVal copy with SAM frozen, from the SAM of
# configs/demo/sam_tiny_256_coco-mval.py, evaluated on the real GrabCut copy.
_base_ = ['./samref_tiny_256_stage2.py']
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
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=30),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        by_epoch=False,
        begin=30,
        end=1200),
]
train_cfg = dict(max_iters=1200)
default_hooks = dict(checkpoint=dict(interval=1200))
load_from = 'work_dirs/demo_real/sam/iter_600.pth'
# The refiners start from those make demo trained on the generated shapes,
# as SAM does (docs/en/notes/demo_recipe.md).
shapes_refiners = 'work_dirs/demo/stage2/iter_600.pth'
model = dict(
    global_refiner=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint=shapes_refiners,
            prefix='global_refiner.')),
    patch_refiner=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint=shapes_refiners,
            prefix='patch_refiner.')))
