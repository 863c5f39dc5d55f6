# The demo's data (make demo): the generated shapes
# (samref.datasets.synthetic) at a 256 x 256 input, small enough to train on
# two CPU cores in minutes.
input_size = 256
shapes_root = 'work_dirs/demo/shapes'
train_pipeline = [
    dict(
        type='SkipBadSample',
        transforms=[
            dict(type='LoadImageWithPixelLimit'),
            dict(type='SampleObject'),
            dict(type='LoadObjectMasks'),
            dict(type='ObjectMaskToSegMap'),
        ]),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(
        type='PackSegInputs',
        meta_keys=('img_path', 'ori_shape', 'img_shape', 'scale_factor',
                   'flip', 'flip_direction', 'click_gamma')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='InteractiveSegDataset',
        data_root=shapes_root + '/train',
        dataset_name='Shapes',
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='InteractiveSegDataset',
        data_root=shapes_root + '/val',
        dataset_name='Shapes',
        pipeline=[
            dict(type='LoadImageWithPixelLimit'),
            dict(type='LoadObjectMasks'),
            dict(
                type='Resize',
                scale=(input_size, input_size),
                keep_ratio=True,
                backend='pillow',
                interpolation='bilinear'),
            dict(type='PackInteractiveInputs'),
        ]))
test_evaluator = dict(type='NoCMetric')
test_cfg = dict(type='InteractiveTestLoop', num_clicks=20)
# Validation while training (every train_cfg.val_interval iterations): the
# click protocol on the first 20 objects of the val pictures, logged only.
# make demo skips it: it evaluates the last checkpoint on every val object.
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=test_dataloader['dataset'])
val_evaluator = dict(type='NoCMetric')
val_cfg = dict(type='InteractiveValLoop', num_clicks=20, max_objects=20)
