# Demo stage 2 reading pre-extracted image embeddings instead of running
# SAM's image encoder. Extract them first:
#   python tools/extract_embeddings.py \
#       configs/demo/samref_tiny_256_stage2_embeddings.py \
#       --out work_dirs/demo/embeddings
_base_ = ['./samref_tiny_256_stage2.py']
embedding_dir = 'work_dirs/demo/embeddings'
train_pipeline = [
    dict(
        type='SkipBadSample',
        transforms=[
            dict(type='LoadImageWithPixelLimit'),
            dict(type='SampleObject'),
            dict(type='LoadObjectMasks'),
            dict(type='ObjectMaskToSegMap'),
        ]),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(
        type='PackSegInputs',
        meta_keys=('img_path', 'ori_shape', 'img_shape', 'scale_factor',
                   'flip', 'flip_direction', 'click_gamma')),
    # The embedding of the (flipped) view replaces SAM's image encoder.
    dict(type='LoadImageEmbedding', embedding_dir=embedding_dir),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# Refuses embeddings made by another encoder or for another input size.
custom_hooks = [dict(type='EmbeddingCheckHook')]
