_base_ = ['../_base_/models/focsam_vit-b.py', '../_base_/default_runtime.py']
