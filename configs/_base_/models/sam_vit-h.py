# SAM with the ViT-H image encoder; official weights: sam_vit_h_4b8939.pth.
_base_ = ['./sam_vit-b.py']
model = dict(image_encoder=dict(arch='huge'))
