# SAM-REF on SAM ViT-L.
_base_ = ['./samref_vit-b.py']
model = dict(image_encoder=dict(arch='large'))
