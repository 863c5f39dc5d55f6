# Copyright (c) samref contributors. All rights reserved.
"""Loading a checkpoint's weights into a model, and saying what differed."""
import re
from typing import Any, Dict, Mapping, Sequence, Tuple

import torch

# Share of the model's values a checkpoint must provide (see
# ``load_model_weights``).
MIN_LOADED_FRACTION = 0.5


def checkpoint_key_report(model: torch.nn.Module,
                          state_dict: Mapping[str, Any]) -> Dict[str, list]:
    """Compare a model's state-dict keys with a checkpoint's.

    Args:
        model (nn.Module): The model.
        state_dict (Mapping): The checkpoint's state dict (``module.``
            prefixes of wrapped models are ignored).

    Returns:
        dict[str, list]: Sorted keys that are ``new`` (in the model, not in
        the checkpoint), ``unexpected`` (the other way round) and
        ``mismatched`` (in both with different shapes).
    """
    ours = model.state_dict()
    theirs = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    return dict(
        new=sorted(set(ours) - set(theirs)),
        unexpected=sorted(set(theirs) - set(ours)),
        mismatched=sorted(
            k for k in set(ours) & set(theirs)
            if not isinstance(theirs[k], torch.Tensor)
            or tuple(theirs[k].shape) != tuple(ours[k].shape)))


def format_key_report(report: Dict[str, list]) -> str:
    """One readable line per kind of difference, keys grouped by module.

    Args:
        report (dict[str, list]): From :func:`checkpoint_key_report`.

    Returns:
        str: E.g. ``'new (kept at their initialisation): global_refiner (48
        tensors), patch_refiner (30 tensors)'``; ``'all keys match'``.
    """
    titles = dict(
        new='new (kept at their initialisation)',
        unexpected='unexpected (not used)',
        mismatched='shape mismatch (not loaded)')
    lines = []
    for kind, keys in report.items():
        if not keys:
            continue
        groups: Dict[str, int] = {}
        for key in keys:
            prefix = key.split('.')[0]
            groups[prefix] = groups.get(prefix, 0) + 1
        lines.append(f'{titles[kind]}: ' +
                     ', '.join(f'{name} ({count} tensors)'
                               for name, count in groups.items()))
    return '; '.join(lines) or 'all keys match'


def loaded_fraction(model: torch.nn.Module, report: Dict[str, list]) -> float:
    """Share of the model's values (parameter and buffer elements) that a
    checkpoint provides.

    Args:
        model (nn.Module): The model.
        report (dict[str, list]): From :func:`checkpoint_key_report`.

    Returns:
        float: Between 0 and 1.
    """
    sizes = {k: v.numel() for k, v in model.state_dict().items()}
    missing = set(report['new']) | set(report['mismatched'])
    total = sum(sizes.values())
    return 1.0 - sum(sizes[k] for k in missing) / max(total, 1)


def load_model_weights(model: torch.nn.Module,
                       checkpoint: dict,
                       strict: bool = False,
                       revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.',
                                                                  ''), ),
                       source: str = 'the checkpoint') -> Dict[str, list]:
    """Load a checkpoint's weights into a model and say what differed.

    Tensors of another shape are left out rather than failing the whole
    load, as long as the checkpoint provides most of the model: when less
    than :data:`MIN_LOADED_FRACTION` of the model's values would load (a
    checkpoint of another architecture or size), it is an error rather than
    a run with random weights.

    Args:
        model (nn.Module): The model (unwrapped).
        checkpoint (dict): A loaded checkpoint (a state dict, or a dict with
            ``state_dict``), e.g. from :func:`load_checkpoint_file`.
        strict (bool): Raise when any key is new, unexpected or of another
            shape. Defaults to False.
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)``
            rewrites of the checkpoint's keys.
        source (str): Name of the checkpoint in messages.

    Returns:
        dict[str, list]: The report of :func:`checkpoint_key_report`.

    Raises:
        RuntimeError: The checkpoint holds no state dict (a dict of names),
            does not fit the model, or (``strict``) differs from it.
    """
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f'{source} holds no state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise RuntimeError(f'{source} holds no state dict')
    odd = next((k for k in state_dict if not isinstance(k, str)), None)
    if odd is not None:
        raise RuntimeError(f'{source} holds a state dict with the key '
                           f'{odd!r}; state dict keys are names')
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    report = checkpoint_key_report(model, state_dict)
    if strict and any(report.values()):
        raise RuntimeError(f'{source} does not match the model: '
                           f'{format_key_report(report)}')
    fraction = loaded_fraction(model, report)
    if fraction < MIN_LOADED_FRACTION:
        raise RuntimeError(
            f'{source} does not fit {type(model).__name__}: only '
            f'{fraction:.0%} of its weights would load '
            f'({format_key_report(report)}). It is a checkpoint of another '
            'model or size; pick the config that matches it.')
    mismatched = set(report['mismatched'])
    model.load_state_dict(
        {
            k: v
            for k, v in state_dict.items() if k not in mismatched
        },
        strict=False)
    return report
