# HQSeg-44K val (1537 images): DIS-VD, ThinObject5K, COIFT, HRSOD as HQ-SAM
# lays them out under DIS5K/ and thin_object_detection/. Tables report each
# part and the whole; evaluate parts apart with --cfg-options
# test_dataloader.dataset.parts="['COIFT']".
_base_ = ['./interactive_eval.py']
test_dataloader = dict(
    dataset=dict(type='HQSeg44KDataset', data_root='data/sam-hq'))
