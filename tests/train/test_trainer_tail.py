"""Defect 3: a last batch of one sample with BatchNorm. Trainer.fit merges it into the batch
before it (a training BatchNorm cannot normalize one sample); every other batch arithmetic, and
every model without BatchNorm, keeps its batches exactly."""
import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.train import Trainer
from pydl.train import callbacks as C


class BatchSizes(C.Callback):
    def __init__(self):
        self.sizes = []

    def on_batch_begin(self, batch, logs=None):
        self.sizes.append(logs["size"])


def fit_sizes(model, n, batch_size, epochs=2, shuffle=True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    rec = BatchSizes()
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), callbacks=[rec])
    h = trainer.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, verbose=0)
    return rec.sizes, h


def bn_model():
    pydl.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("n, bs, expected", [
    (33, 8, [8, 8, 8, 9]),          # 33 % 8 == 1: the tail of one joins the last full batch
    (9, 8, [9]),                    # one batch of 8 plus one sample: a single batch of 9
    (17, 16, [17]),
    (3, 2, [3]),                    # 3 % 2 == 1
])
def test_one_sample_tail_is_merged_with_batchnorm(n, bs, expected):
    sizes, h = fit_sizes(bn_model(), n, bs)
    assert sizes == expected * 2
    assert len(h.history["loss"]) == 2 and all(np.isfinite(h.history["loss"]))
    assert h.params["steps"] == len(expected)


@pytest.mark.parametrize("n, bs, expected", [
    (34, 8, [8, 8, 8, 8, 2]),       # a tail of two is kept
    (32, 8, [8, 8, 8, 8]),
    (10, 32, [10]),                 # batch larger than the data: full batch
    (33, None, [33]),               # full batch
])
def test_other_batch_arithmetic_is_unchanged_with_batchnorm(n, bs, expected):
    sizes, _ = fit_sizes(bn_model(), n, bs)
    assert sizes == expected * 2


def test_models_without_batchnorm_keep_a_tail_of_one():
    pydl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    sizes, _ = fit_sizes(model, 33, 8)
    assert sizes == [8, 8, 8, 8, 1] * 2


def test_merged_tail_trains_as_one_batch_of_the_same_samples():
    """The merged batch is exactly the last bs + 1 samples of the epoch's order: the same
    update as a fit whose batch_size makes that batch by itself (no shuffling)."""
    n = 9
    a = bn_model()
    fit_sizes(a, n, 8, epochs=1, shuffle=False)
    b = bn_model()
    fit_sizes(b, n, 9, epochs=1, shuffle=False)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert v.tobytes() == w.tobytes(), k
