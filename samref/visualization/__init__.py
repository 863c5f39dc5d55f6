# Copyright (c) samref contributors. All rights reserved.
from .interaction_drawer import (draw_click_progress, draw_interaction,
                                 draw_panel_grid, pick_mask_color)
from .miou_curve import plot_miou_curves

__all__ = [
    'draw_click_progress', 'draw_interaction', 'draw_panel_grid',
    'pick_mask_color', 'plot_miou_curves'
]
