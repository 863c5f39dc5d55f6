# Copyright (c) samref contributors. All rights reserved.
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import Evaluator
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import BaseLoop
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader

from ..apis.session import InteractiveSession
from ..evaluation.click_simulator import ClickSimulator, object_box
from ..evaluation.functional import mask_iou
from ..models.segmentors import BaseInteractiveSegmentor
from ..utils.image_files import ImageFileError, read_image
from ..utils.timer import timed
from ..visualization import draw_click_progress
from .embedding_cache import EmbeddingCache

# The protocols: every object starts with a click, or with its box.
FIRST_PROMPTS = ('click', 'box')
# Clicks of the untimed warm-up: enough for every branch a model takes from
# its second click on (FocSAM's refinement, SAM-REF's selector).
WARM_UP_CLICKS = 3


@LOOPS.register_module()
class InteractiveTestLoop(BaseLoop):
    """Click-based evaluation of an interactive segmentor.

    For every image it computes the click-independent features once (or
    reads the image embedding from an on-disk cache), then, for every object
    of the image, simulates ``num_clicks`` clicks with
    :class:`ClickSimulator` (always all of them), feeding the previous
    low-resolution logits back, and records the IoU after each click at the
    original image size. Per image it hands the evaluator one record::

        dict(img_path, dataset_name, subset, encode_time, first_prompt,
             objects=[dict(index, ious, clicks, box, branches, num_clicks,
                           click_time, interact_time, stage_times), ...])

    With ``first_prompt='box'`` (the box-first protocol) each object's first
    interaction is its ground-truth bounding box (:func:`object_box`,
    original pixels) instead of the first click, and the clicks follow from
    the box's mask as in the click protocol, the box kept with every
    interaction: interaction ``k`` is the box and ``k - 1`` clicks, NoC and
    mIoU@k count interactions (the box is the first).

    Any model implementing
    :class:`samref.models.BaseInteractiveSegmentor` is evaluated unchanged.

    Before its first image is timed, the loop runs it once untimed and
    unrecorded (its encoding, through the cache without counting or
    storing, and :data:`WARM_UP_CLICKS` clicks on its first object), so
    that one-time costs (the CUDA context, cuDNN's algorithm search, the
    allocator's first growth, oneDNN's kernel creation) are not charged to
    the first image's encode and click times.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test dataloader (batch size 1;
            one item is one image with all its objects).
        evaluator (Evaluator | dict | list): Usually ``NoCMetric``.
        num_clicks (int): Interactions per object (clicks, and the box
            under the box-first protocol). Defaults to 20.
        first_prompt (str): ``'click'`` (the click protocol) or ``'box'``
            (the box-first protocol). Defaults to ``'click'``.
        embedding_cache (str, optional): Folder of an on-disk image
            embedding cache, keyed by image content and encoder weights.
            Defaults to None (no cache).
        show_dir (str, optional): Write one picture per object to this
            folder: the ground truth and the mask after each of
            ``show_clicks``, clicks drawn, IoU in the captions and the
            refinement window of the click when the model reports one
            (SAM-REF's PatchDiff). Defaults to None (no pictures). With
            several processes, the main one draws its share.
        show_clicks (Sequence[int]): Clicks after which to draw the mask.
            Defaults to ``(1, 3, 5, 10, 20)``.
        show_max_objects (int, optional): Draw only the first objects, in
            dataset order. Defaults to None (all).
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 num_clicks: int = 20,
                 first_prompt: str = 'click',
                 embedding_cache: Optional[str] = None,
                 show_dir: Optional[str] = None,
                 show_clicks: Sequence[int] = (1, 3, 5, 10, 20),
                 show_max_objects: Optional[int] = None) -> None:
        super().__init__(runner, dataloader)
        if self.dataloader.batch_size != 1:
            raise ValueError('InteractiveTestLoop needs batch_size=1 (one '
                             'image with all its objects per item), got '
                             f'{self.dataloader.batch_size}')
        if num_clicks < 1:
            raise ValueError(f'num_clicks must be >= 1, got {num_clicks}')
        if first_prompt not in FIRST_PROMPTS:
            raise ValueError(f'first_prompt must be one of {FIRST_PROMPTS}, '
                             f'got {first_prompt!r}')
        self.first_prompt = first_prompt
        self.evaluator = runner.build_evaluator(evaluator)
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.evaluator.dataset_meta = self.dataloader.dataset.metainfo
        self.num_clicks = num_clicks
        self.embedding_cache_dir = embedding_cache
        self.embedding_cache: Optional[EmbeddingCache] = None
        if any(k < 1 for k in show_clicks):
            raise ValueError('show_clicks are click numbers >= 1, got '
                             f'{list(show_clicks)}')
        self.show_dir = show_dir
        self.show_clicks = sorted(set(show_clicks))
        self.show_max_objects = show_max_objects
        self.shown_objects = 0
        self.warmed_up = False

    @property
    def model(self) -> BaseInteractiveSegmentor:
        """The evaluated model, unwrapped from DDP and similar wrappers."""
        model = self.runner.model
        model = getattr(model, 'module', model)
        if not isinstance(model, BaseInteractiveSegmentor):
            raise TypeError(f'{type(model).__name__} is not an interactive '
                            'segmentor (samref.models.'
                            'BaseInteractiveSegmentor)')
        return model

    def run(self) -> dict:
        """Evaluate every image of the dataloader.

        Returns:
            dict: The evaluator's metrics.
        """
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        model = self.model
        model.eval()
        if self.embedding_cache_dir:
            self.embedding_cache = EmbeddingCache(self.embedding_cache_dir,
                                                  model.image_encoder)
        progress = ProgressBar(len(self.dataloader)) \
            if is_main_process() else None
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
            if progress is not None:
                progress.update()
        if progress is not None:
            print()
        if self.embedding_cache is not None:
            print_log(
                f'embedding cache {self.embedding_cache.folder}: '
                f'{self.embedding_cache.hits} hits, '
                f'{self.embedding_cache.misses} misses',
                logger='current')
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: dict) -> None:
        """Evaluate all objects of one image.

        Args:
            idx (int): Index of the batch.
            data_batch (dict): One image from the dataloader.
        """
        self.runner.call_hook(
            'before_test_iter', batch_idx=idx, data_batch=data_batch)
        outputs = [self.evaluate_image(data_batch)]
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook(
            'after_test_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)

    def encode(self,
               inputs: torch.Tensor,
               record: bool = True) -> Dict[str, torch.Tensor]:
        """The image's features, through the embedding cache if any.

        Args:
            inputs (Tensor): The preprocessed image.
            record (bool): Count the cache's hit or miss and store a
                computed embedding. Defaults to True; the warm-up reads
                the cache without changing it.

        Returns:
            dict[str, Tensor]: The model's image features.
        """
        model = self.model
        if self.embedding_cache is None:
            return model.encode_image(inputs)
        cached = self.embedding_cache.get(inputs, count=record)
        if cached is not None:
            return model.encode_image(
                inputs, image_embeddings=cached.to(inputs.device))
        features = model.encode_image(inputs)
        if record:
            self.embedding_cache.put(inputs, features['image_embeddings'])
        return features

    def evaluate_image(self, data_batch: dict) -> dict:
        """Preprocess and encode one image, then interact with each object.

        Args:
            data_batch (dict): One image from the dataloader.

        Returns:
            dict: The image's record (see the class docstring).
        """
        model = self.model
        device = next(model.parameters()).device
        if not self.warmed_up:
            self.warm_up(data_batch)
        times: Dict[str, float] = {}
        with timed(times, 'encode', device):
            data = model.data_preprocessor(data_batch, False)
            features = self.encode(data['inputs'])
        sample = data['data_samples'][0]
        meta = sample.metainfo
        objects = []
        for k, gt in enumerate(sample.gt_object_masks):
            gt = gt.cpu().numpy()
            steps = [] if self.draws_next_object() else None
            objects.append(
                dict(
                    index=k, **self.interact_object(gt, features, meta,
                                                    steps)))
            if steps is not None:
                self.show_object(meta, k, gt, objects[-1]['clicks'], steps,
                                 objects[-1]['box'])
        return dict(
            img_path=meta['img_path'],
            dataset_name=meta.get('dataset_name', ''),
            subset=meta.get('subset'),
            encode_time=times['encode'],
            first_prompt=self.first_prompt,
            objects=objects)

    def warm_up(self, data_batch: dict) -> None:
        """Run an image once, untimed and unrecorded (see the class
        docstring).

        Args:
            data_batch (dict): One image from the dataloader.
        """
        model = self.model
        data = model.data_preprocessor(data_batch, False)
        features = self.encode(data['inputs'], record=False)
        sample = data['data_samples'][0]
        if len(sample.gt_object_masks):
            self.interact_object(
                sample.gt_object_masks[0].cpu().numpy(),
                features,
                sample.metainfo,
                num_clicks=WARM_UP_CLICKS)
        self.warmed_up = True

    def draws_next_object(self) -> bool:
        """Whether the next object gets a picture in ``show_dir``."""
        return bool(self.show_dir) and is_main_process() and (
            self.show_max_objects is None
            or self.shown_objects < self.show_max_objects)

    def show_object(self,
                    meta: dict,
                    index: int,
                    gt: np.ndarray,
                    clicks: List[list],
                    steps: List[dict],
                    box: Optional[List[int]] = None) -> None:
        """Write the picture of one object's interaction to ``show_dir``.

        Args:
            meta (dict): The image's metainfo (``img_path``).
            index (int): The object's index in the image.
            gt (np.ndarray): ``H x W`` 1 / 0 / -1 ground truth.
            clicks (list[list]): ``[x, y, positive]`` per click.
            steps (list[dict]): The masks after ``show_clicks``, from
                :meth:`interact_object`.
            box (list[int], optional): The box prompt of the box-first
                protocol.
        """
        self.shown_objects += 1
        try:
            image = read_image(meta['img_path'], channel_order='rgb')
        except (OSError, ImageFileError) as error:
            image, problem = None, str(error)
        else:
            problem = 'not an image of the ground truth\'s size'
        if image is None or image.shape[:2] != gt.shape:
            print_log(
                f'show_dir: cannot draw {meta["img_path"]}: {problem}',
                logger='current',
                level=logging.WARNING)
            return
        name = osp.splitext(osp.basename(meta['img_path']))[0]
        if meta.get('dataset_name'):
            name = f'{meta["dataset_name"]}_{name}'
        model_name = type(self.model).__name__
        picture = draw_click_progress(
            image,
            gt,
            steps, [tuple(c) for c in clicks],
            f'{name}  object {index}  {model_name}',
            prompt_box=box)
        mmcv.imwrite(
            mmcv.rgb2bgr(picture),
            osp.join(self.show_dir, f'{name}_{index}.png'))

    def interact_object(self,
                        gt: np.ndarray,
                        features: Dict[str, torch.Tensor],
                        meta: dict,
                        steps: Optional[List[dict]] = None,
                        num_clicks: Optional[int] = None) -> dict:
        """Run the clicks of one object through an
        :class:`~samref.apis.InteractiveSession`.

        Args:
            gt (np.ndarray): ``H x W`` 1 / 0 / -1 ground truth.
            features (dict[str, Tensor]): The image's features.
            meta (dict): The image's metainfo (sizes and scale factor).
            steps (list[dict], optional): When given, the ``click`` number,
                ``mask``, ``iou`` and the PatchDiff ``box`` (original
                pixels; None when it did not run) after each of
                ``show_clicks`` are appended to it.
            num_clicks (int, optional): Clicks to make; :attr:`num_clicks`
                when None.

        Returns:
            dict: ``ious`` and ``branches`` per interaction, ``clicks`` (a
            click is ``[x, y, positive]`` in original pixels, ``[0, 0, 0]``
            after a perfect prediction, as the protocol's clicker makes it;
            the branch is the model's, e.g. SAM-REF's ``'global'`` or
            ``'patch'``, or None), ``box`` (the box prompt ``[x0, y0, x1,
            y1]``, None under the click protocol), ``num_clicks`` (the
            interactions made), the summed ``click_time`` (model and
            upsampling to the original size), ``interact_time`` (model
            only) and the model's ``stage_times``.
        """
        simulator = ClickSimulator(gt)
        session = InteractiveSession(
            self.model, features, meta, time_stages=True)
        pred = np.zeros(gt.shape, dtype=bool)
        ious: List[float] = []
        clicks: List[list] = []
        branches: List[Optional[str]] = []
        times = dict(click=0.0, interact=0.0)
        stage_times: Dict[str, float] = {}
        box = list(object_box(gt)) if self.first_prompt == 'box' else None
        for step in range(num_clicks or self.num_clicks):
            if step == 0 and box is not None:
                result = session.add_box(*box)
            else:
                click = simulator.next_click(pred)
                clicks.append([click.x, click.y, int(click.is_positive)])
                result = session.add_click(click.x, click.y, click.is_positive)
            pred = result.mask
            times['click'] += result.click_time
            times['interact'] += result.interact_time
            for name, seconds in result.interaction.stage_times.items():
                stage_times[name] = stage_times.get(name, 0.0) + seconds
            branch = result.interaction.branch
            branches.append(branch[0] if branch else None)
            ious.append(mask_iou(gt, pred))
            if steps is not None and len(ious) in self.show_clicks:
                steps.append(
                    dict(
                        click=len(ious),
                        mask=pred,
                        iou=ious[-1],
                        box=result.window))
        return dict(
            ious=ious,
            clicks=clicks,
            box=box,
            branches=branches,
            num_clicks=len(ious),
            click_time=times['click'],
            interact_time=times['interact'],
            stage_times=stage_times)
