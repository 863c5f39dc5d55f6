# Copyright (c) samref contributors. All rights reserved.
from .interaction_drawer import (draw_click_progress, draw_interaction,
                                 draw_panel_grid, pick_mask_color)
from .loss_curve import plot_loss_curves, read_training_scalars
from .miou_curve import plot_miou_curves

__all__ = [
    'draw_click_progress', 'draw_interaction', 'draw_panel_grid',
    'pick_mask_color', 'plot_loss_curves', 'plot_miou_curves',
    'read_training_scalars'
]
