# SAM with the ViT-L image encoder; official weights: sam_vit_l_0b3195.pth.
_base_ = ['./sam_vit-b.py']
model = dict(image_encoder=dict(arch='large'))
