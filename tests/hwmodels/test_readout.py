import numpy as np
import pytest

from tsslbp.hwmodels.readout import encode_graded, predict_counts, window_counts


def test_encode_graded_rounds_and_pads():
    x = np.array([[0.0, 0.25, 1.0]])
    out = encode_graded(x, n_steps=3, total_steps=5, input_bits=4)
    assert out.shape == (1, 3, 5)
    assert out[0, :, 0].tolist() == [0, 4, 15] and np.all(out[..., 3:] == 0)
    assert np.all(out[..., :3] == out[..., :1])


def test_encode_graded_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        encode_graded(np.array([[1.5]]), 2, 3)
    with pytest.raises(ValueError, match="total_steps"):
        encode_graded(np.array([[0.5]]), 4, 3)


def test_window_counts_and_prediction():
    spikes = np.zeros((2, 3, 6), dtype=np.int64)
    spikes[0, 1, 2:5] = 1  # inside the window [2, 5)
    spikes[0, 2, :2] = 1  # before the window: ignored
    spikes[1, 0, 2] = spikes[1, 2, 3] = 1  # tie -> lowest index
    assert window_counts(spikes, 2, 3).tolist() == [[0, 3, 0], [1, 0, 1]]
    assert predict_counts(spikes, {"readout_offset": 2, "n_steps": 3}).tolist() == [1, 0]
    with pytest.raises(ValueError, match="needs 8"):
        window_counts(spikes, 5, 3)
