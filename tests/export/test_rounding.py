"""Error-compensating weight rounding (tsslbp.export.rounding) against direct computations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tsslbp.export.quantize import weight_grid
from tsslbp.export.rounding import compensated_round, input_gram


def test_dense_gram_is_the_sum_over_samples_and_steps_of_outer_products(rng):
    trace = torch.from_numpy(rng.random((4, 3, 5)))
    expected = sum(np.outer(trace[n, :, t], trace[n, :, t]) for n in range(4) for t in range(5))
    np.testing.assert_allclose(input_gram(trace)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("groups,stride,padding", [(1, (1, 1), (0, 0)), (2, (2, 1), (1, 1))])
def test_conv_gram_matches_the_patches_each_output_sees(rng, groups, stride, padding):
    trace = torch.from_numpy(rng.random((2, 4, 5, 6, 3)))  # (N, C, H, W, T)
    gram = input_gram(trace, kernel=(3, 2), stride=stride, padding=padding, groups=groups)
    per = 4 // groups
    assert gram.shape == (groups, per * 6, per * 6)
    for g in range(groups):
        expected = np.zeros((per * 6, per * 6))
        for n in range(2):
            for t in range(3):
                x = trace[n, g * per : (g + 1) * per, :, :, t][None]
                cols = F.unfold(x, (3, 2), padding=padding, stride=stride)[0].numpy()  # (K, L)
                expected += cols @ cols.T
        np.testing.assert_allclose(gram[g], expected, rtol=1e-10)


def test_compensated_rounding_stays_on_the_grid_and_cuts_the_current_error(rng):
    # Correlated inputs (as PSP traces of neighbouring pixels are): rounding errors that cancel
    # in the current are what compensation finds.
    base = rng.random((400, 1))
    x = np.clip(base + 0.1 * rng.standard_normal((400, 60)), 0, None)
    w = rng.standard_normal((20, 60)) * 7.3
    grid = weight_grid(6)  # multiples of 8 in [-256, 248]
    gram = (x.T @ x)[None]
    nearest = np.clip(np.round(w / grid[2]) * grid[2], grid[0], grid[1])
    comp, clipped = compensated_round(w, gram, grid)
    assert comp.dtype == np.int64 and comp.shape == w.shape and clipped == 0
    assert np.all(comp % grid[2] == 0) and comp.min() >= grid[0] and comp.max() <= grid[1]
    err_nearest = np.linalg.norm((w - nearest) @ x.T)
    err_comp = np.linalg.norm((w - comp) @ x.T)
    assert err_comp < 0.5 * err_nearest, (
        f"current error: compensated {err_comp:.1f} vs nearest {err_nearest:.1f}"
    )


def test_compensated_rounding_counts_values_pushed_beyond_the_range():
    x = np.ones((1, 2))
    comp, clipped = compensated_round(np.array([[300.0, 10.0]]), (x.T @ x)[None], (-256, 254, 2))
    assert comp[0, 0] == 254 and clipped == 1, (comp, clipped)
