# Training samples as FocSAM draws them: one object per image, long side
# 1024, flip, photometric distortion; the data preprocessor pads to
# 1024 x 1024. Unreadable images and broken masks are skipped (see
# SkipBadSample): mmengine then draws another sample.
train_pipeline = [
    dict(
        type='SkipBadSample',
        transforms=[
            dict(type='LoadImageWithPixelLimit'),
            dict(type='SampleObject'),
            dict(type='LoadObjectMasks'),
            dict(type='ObjectMaskToSegMap'),
        ]),
    dict(type='Resize', scale=(1024, 1024), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(
        type='PackSegInputs',
        meta_keys=('img_path', 'ori_shape', 'img_shape', 'scale_factor',
                   'flip', 'flip_direction', 'click_gamma', 'source')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
