# Copyright (c) samref contributors. All rights reserved.
import logging
from typing import Callable, List, Optional, Union

from mmcv.transforms import BaseTransform, Compose
from mmengine.logging import print_log
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SkipBadSample(BaseTransform):
    """Run transforms and skip the sample when its data is bad, so that a
    long training run survives a few broken files.

    Bad data is what the errors of :attr:`BAD_DATA_ERRORS` report: a
    missing, unreadable or too large image (``OSError``, the
    ``ImageFileError`` of ``LoadImageWithPixelLimit``, the
    ``AssertionError`` of mmcv's ``LoadImageFromFile``), a missing mask or
    folder (``DatasetLayoutError``), a broken, empty or wrongly sized mask or
    annotation (``MaskFileError``, pycocotools errors, which
    ``LoadObjectMasks`` reports as ``MaskFileError``) and other
    ``ValueError``. The sample is logged as a warning naming its image and
    the error, with the number of samples skipped so far in this process
    (each dataloader worker counts its own), and ``None`` is returned.
    Other errors (``TypeError``, ``KeyError``, ``KeyboardInterrupt``, ...)
    are programming errors and propagate.

    The rule for a skipped sample is mmengine's: in training mode
    (``test_mode=False``) ``BaseDataset.__getitem__`` draws another index
    at random (numpy's global random state) and tries again, up to the
    dataset's ``max_refetch`` times (1000 by default) before it raises. In
    test mode ``None`` is an error, so keep this wrapper out of evaluation
    pipelines: every benchmark sample must be evaluated.

    Args:
        transforms (list[dict | callable]): The transforms to run, as
            configs or objects.
    """

    BAD_DATA_ERRORS = (OSError, ValueError, AssertionError)
    # Samples skipped in this process, by all instances.
    num_skipped = 0

    def __init__(self, transforms: List[Union[dict, Callable]]) -> None:
        self.transforms = Compose(transforms)

    def transform(self, results: dict) -> Optional[dict]:
        """Run the transforms.

        Args:
            results (dict): The pipeline's results.

        Returns:
            dict | None: The transformed results, None for a bad sample or
            when a transform returns None.
        """
        try:
            return self.transforms(results)
        except self.BAD_DATA_ERRORS as error:
            SkipBadSample.num_skipped += 1
            print_log(
                f'bad sample skipped: image {results.get("img_path")}: '
                f'{type(error).__name__}: {error}; '
                f'{SkipBadSample.num_skipped} bad samples skipped so far in '
                'this process',
                logger='current',
                level=logging.WARNING)
            return None

    def __repr__(self) -> str:
        return f'{type(self).__name__}(transforms={self.transforms})'
