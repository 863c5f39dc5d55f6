# SAM with a tiny random-weight encoder on GrabCut: exercises the whole
# interactive evaluation on a CPU in minutes (the numbers mean nothing).
_base_ = ['./sam_vit-tiny.py', '../_base_/datasets/eval_grabcut.py']
