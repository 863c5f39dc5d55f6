# The click protocol of the interactive benchmarks
# (docs/en/user_guides/interactive_evaluation.md): the image is resized to
# long side 1024 with PIL's bilinear filter (SamPredictor's resize), object
# masks stay at the original size, 20 simulated clicks per object.
test_pipeline = [
    dict(type='LoadImageWithPixelLimit'),
    dict(type='LoadObjectMasks'),
    dict(
        type='Resize',
        scale=(1024, 1024),
        keep_ratio=True,
        backend='pillow',
        interpolation='bilinear'),
    dict(type='PackInteractiveInputs'),
]
test_dataloader = dict(
    batch_size=1,  # one image with all its objects
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(type='NoCMetric')
test_cfg = dict(type='InteractiveTestLoop', num_clicks=20)
# Validation while training (every train_cfg.val_interval iterations, the
# best checkpoint kept by NoC90): the same protocol on the first 100 objects
# of COCO-MVal. Its images are COCO val2017, held out from COCO + LVIS
# training, and it is none of the benchmarks the published tables report, so
# keeping the best checkpoint does not select on a test set. Another set:
# val_dataloader = dict(dataset=dict(type=..., data_root=...)).
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='COCOMValDataset',
        data_root='data/COCO_MVal',
        pipeline=test_pipeline))
val_evaluator = dict(type='NoCMetric')
val_cfg = dict(type='InteractiveValLoop', num_clicks=20, max_objects=100)
