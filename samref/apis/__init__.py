# Copyright (c) samref contributors. All rights reserved.
from .embeddings import extract_embeddings
from .inference import InteractivePredictor, init_model, load_weights
from .latency import (PeakMemory, measure_interaction, measure_sat,
                      padded_input, synthetic_object)
from .sam_predictor import PromptPredictor
from .session import ClickResult, InteractiveSession

__all__ = [
    'ClickResult', 'InteractivePredictor', 'InteractiveSession', 'init_model',
    'load_weights', 'extract_embeddings', 'PeakMemory', 'measure_interaction',
    'measure_sat', 'padded_input', 'synthetic_object', 'PromptPredictor'
]
