# SAM-REF on SAM ViT-H.
_base_ = ['./samref_vit-b.py']
model = dict(image_encoder=dict(arch='huge'))
