# Copyright (c) samref contributors. All rights reserved.
import json
import logging
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmseg.registry import RUNNERS
from mmseg.structures import SegDataSample

from malicious_files import TENSOR_ATTACKS
from samref.apis import extract_embeddings, init_model
from samref.datasets import LoadImageEmbedding, make_shapes_dataset
from samref.engine import EmbeddingCache
from samref.utils import (EmbeddingStore, encoder_fingerprint,
                          load_tensor_file, save_tensor_file)
from testing_utils import CONFIG_DIR, NO_VALIDATION, build_from_config

STAGE1 = CONFIG_DIR / 'demo' / 'sam_tiny_256_stage1.py'
EMBEDDINGS = CONFIG_DIR / 'demo' / 'samref_tiny_256_stage2_embeddings.py'
# The demo encoder's embedding of a 256 x 256 input (8-pixel patches).
EMBEDDING_SHAPE = (1, 128, 32, 32)


@pytest.fixture(scope='module')
def encoder():
    torch.manual_seed(0)
    return build_from_config('demo/sam_tiny_256_stage1.py').image_encoder


@pytest.fixture
def warnings_log():
    """Collect the current logger's warnings."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_cache_knows_the_encoder_output(tmp_path, encoder):
    cache = EmbeddingCache(str(tmp_path), encoder)
    inputs = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        real = encoder(inputs)
    assert cache.output_spec(inputs) == (tuple(real.shape), real.dtype)
    assert tuple(real.shape) == EMBEDDING_SHAPE
    assert cache.key(inputs).endswith('-float32')


def truncated(path, marker):
    save_tensor_file(torch.randn(EMBEDDING_SHAPE[1:]), str(path))
    path.write_bytes(path.read_bytes()[:2000])


def garbage(path, marker):
    path.write_bytes(b'not a tensor file')


def wrong_shape(path, marker):
    save_tensor_file(torch.randn(EMBEDDING_SHAPE), str(path))


def half(path, marker):
    save_tensor_file(torch.randn(EMBEDDING_SHAPE[1:]).half(), str(path))


def integers(path, marker):
    save_tensor_file(
        torch.zeros(EMBEDDING_SHAPE[1:], dtype=torch.int64), str(path))


def getattr_attack(path, marker):
    TENSOR_ATTACKS['getattr'](path, marker)


def reduce_attack(path, marker):
    TENSOR_ATTACKS['reduce'](path, marker)


def case_twin_attack(path, marker):
    TENSOR_ATTACKS['case_twin'](path, marker)


@pytest.mark.parametrize('writer', [
    truncated, garbage, wrong_shape, half, integers, getattr_attack,
    reduce_attack, case_twin_attack
])
def test_unusable_cache_entry_is_a_miss(tmp_path, encoder, warnings_log,
                                        writer):
    marker = tmp_path / 'code_ran'
    cache = EmbeddingCache(str(tmp_path / 'cache'), encoder)
    inputs = torch.randn(1, 3, 256, 256)
    path = cache.store.path(cache.key(inputs))
    os.makedirs(cache.folder)
    writer(type(tmp_path)(path), marker)
    assert cache.get(inputs) is None
    assert (cache.hits, cache.misses) == (0, 1)
    assert any(path in r.getMessage() for r in warnings_log)
    assert not marker.exists()
    # Recomputed and written again, the entry is used.
    embedding = torch.randn(EMBEDDING_SHAPE)
    cache.put(inputs, embedding)
    torch.testing.assert_close(cache.get(inputs), embedding)
    assert cache.hits == 1


def test_extracted_embeddings_serve_as_cache_at_the_same_precision(
        tmp_path, encoder):
    """One store: the training embeddings extracted in float32 are the
    evaluation cache's entries; float16 ones are not used for a float32
    encoder."""
    inputs = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        embedding = encoder(inputs)
    store = EmbeddingStore(str(tmp_path), encoder_fingerprint(encoder))
    store.write(store.key(inputs, torch.float16), embedding[0].half())
    cache = EmbeddingCache(str(tmp_path), encoder)
    assert cache.get(inputs) is None and cache.misses == 1
    store.write(store.key(inputs, torch.float32), embedding[0])
    torch.testing.assert_close(cache.get(inputs), embedding)
    assert cache.hits == 1
    with pytest.raises(ValueError, match='not for a torch.float16'):
        store.write(store.key(inputs, torch.float32), embedding[0].half())
    with pytest.raises(ValueError, match='one image at a time'):
        cache.put(inputs, embedding.expand(2, -1, -1, -1))


def packed_sample(img_path):
    sample = SegDataSample()
    sample.set_metainfo(dict(img_path=img_path, img_shape=(16, 16)))
    return dict(data_samples=sample)


def write_embedding_folder(folder, tensor_writer, key='k-float16'):
    (folder / 'x').mkdir(parents=True)
    (folder / 'index.json').write_text(
        json.dumps(
            dict(
                meta=dict(encoder='x', input_size=256),
                files={'a.jpg': {
                    'orig': dict(key=key, img_shape=[16, 16])
                }})))
    tensor_writer(folder / 'x' / f'{key}.safetensors')
    return LoadImageEmbedding(str(folder))


@pytest.mark.parametrize('attack', sorted(TENSOR_ATTACKS))
def test_embedding_file_that_carries_code_is_refused(tmp_path, attack):
    marker = tmp_path / 'code_ran'
    load = write_embedding_folder(
        tmp_path / 'embeddings', lambda path: TENSOR_ATTACKS[attack]
        (path, marker))
    with pytest.raises(
            RuntimeError,
            match='k-float16.safetensors: it is not a safetensors'):
        load(packed_sample('a.jpg'))
    assert not marker.exists()


def test_embedding_folder_of_an_earlier_layout_is_refused(tmp_path):
    """An index of file names (the earlier layout, pickle ``.pt`` files) is
    refused without reading the file it names."""
    marker = tmp_path / 'code_ran'
    folder = tmp_path / 'embeddings'
    folder.mkdir()
    TENSOR_ATTACKS['reduce'](folder / 'a.pt', marker)
    (folder / 'index.json').write_text(
        json.dumps(
            dict(
                meta=dict(encoder='x', input_size=256),
                files={
                    'a.jpg': {
                        'orig': dict(file='a.pt', img_shape=[16, 16])
                    }
                })))
    with pytest.raises(ValueError, match='earlier layout.*extract'):
        LoadImageEmbedding(str(folder))(packed_sample('a.jpg'))
    assert not marker.exists()


def test_embedding_file_of_wrong_shape_is_named(tmp_path):
    load = write_embedding_folder(
        tmp_path / 'embeddings',
        lambda path: save_tensor_file(torch.zeros(256, 16), str(path)))
    with pytest.raises(
            ValueError, match=r'k-float16.safetensors holds .* \(256, 16\)'):
        load(packed_sample('a.jpg'))
    load = write_embedding_folder(
        tmp_path / 'good',
        lambda path: save_tensor_file(torch.zeros(8, 2, 2).half(), str(path)))
    results = load(packed_sample('a.jpg'))
    assert results['data_samples'].image_embeddings.dtype == torch.float32


def embedding_files(folder):
    """The index's meta and the file of each image view."""
    index = json.loads((folder / 'index.json').read_text())
    store = folder / index['meta']['encoder'][:20]
    return index['meta'], {
        (img, view): store / f'{entry["key"]}.safetensors'
        for img, views in index['files'].items()
        for view, entry in views.items()
    }


def test_foreign_embeddings_are_never_used(tmp_path):
    shapes = make_shapes_dataset(str(tmp_path / 'shapes'), 2, seed=5)
    torch.manual_seed(0)
    weights = init_model(EMBEDDINGS).state_dict()
    first = tmp_path / 'first.pth'
    torch.save(weights, first)
    weights['image_encoder.neck.0.weight'] += 1.0
    second = tmp_path / 'second.pth'
    torch.save(weights, second)
    out = tmp_path / 'embeddings'
    cfg = Config.fromfile(str(EMBEDDINGS))
    cfg.train_dataloader.dataset.data_root = shapes

    def extract(checkpoint):
        extract_embeddings(
            cfg,
            init_model(cfg, str(checkpoint)),
            str(out),
            show_progress=False)
        return embedding_files(out)

    meta_one, files_one = extract(first)
    tensors_one = {k: load_tensor_file(f) for k, f in files_one.items()}
    # The second encoder into the same folder: its own files, not the
    # first encoder's, whatever the index says.
    meta_two, files_two = extract(second)
    assert meta_two['encoder'] != meta_one['encoder']
    assert files_two.keys() == files_one.keys()
    assert not set(files_two.values()) & set(files_one.values())
    for key, path in files_two.items():
        assert not torch.equal(load_tensor_file(path), tensors_one[key])
    assert all(path.exists() for path in files_one.values())

    # Training with the first weights refuses the folder (now the second
    # encoder's), even though the config does not ask for the check.
    cfg = Config.fromfile(str(EMBEDDINGS))
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root':
        shapes,
        'train_dataloader.batch_size':
        2,
        'train_dataloader.num_workers':
        0,
        'train_dataloader.dataset.pipeline.5.embedding_dir':
        str(out),
        'train_cfg.max_iters':
        1,
        **NO_VALIDATION,
        'work_dir':
        str(tmp_path / 'train'),
        'load_from':
        str(first),
    })
    cfg.custom_hooks = []
    cfg.experiment_name = 'foreign_embeddings'
    runner = RUNNERS.build(cfg)
    with pytest.raises(RuntimeError, match='another image encoder'):
        runner.train()
    assert not os.path.exists(tmp_path / 'train' / 'iter_1.pth')
