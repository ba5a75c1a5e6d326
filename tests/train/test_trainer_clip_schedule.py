"""Trainer(clipnorm=, clipvalue=, global_clipnorm=) against hand loops with Keras's formulas, and
Trainer(lr_scheduler=, scheduler_interval=) stepping per-batch schedules as PyTorch's loop does."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.optim import lr_scheduler
from pydl.train import L2, Trainer
from pydl.train import callbacks as C


def regression(n=40, seed=0):
    """Targets large enough that the gradients exceed the clipping thresholds."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, x @ rng.normal(size=(4, 2)) * 20.0 + 5.0


def keras_clip(grads, kind, c):
    """Keras 3's BaseOptimizer._clip_gradients, written from its documented formulas."""
    if kind == "clipnorm":
        return [g * c / max(np.sqrt((g * g).sum()), c) for g in grads]
    if kind == "global_clipnorm":
        n = np.sqrt(sum((g * g).sum() for g in grads))
        return [g * c * min(1.0 / n, 1.0 / c) for g in grads]
    return [np.clip(g, -c, c) for g in grads]


@pytest.mark.parametrize("kind,c", [("clipnorm", 0.5), ("global_clipnorm", 0.7), ("clipvalue", 0.05)])
def test_clipping_matches_keras_formulas(stubs, kind, c):
    x, y = regression()
    model = stubs.LinearModel(4, 2)
    reg = L2(0.3)
    tr = Trainer(model, stubs.MSELoss(), stubs.SGD(model.parameters(), lr=0.05), regularizers=[reg], **{kind: c})
    ref = stubs.LinearModel(4, 2)
    loss_fn = stubs.MSELoss()
    for b in range(0, 40, 8):           # the same batches, by hand: regularizer gradient, clip, step
        for p in ref.parameters():
            p.grad = None
        loss_fn(ref(x[b:b + 8]), y[b:b + 8])
        ref.backward(loss_fn.backward())
        ref.weight.grad = ref.weight.grad + 2 * 0.3 * ref.weight.data
        clipped = keras_clip([ref.weight.grad, ref.bias.grad], kind, c)
        for p, g in zip(ref.parameters(), clipped):
            p.data -= 0.05 * g
    tr.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(model.weight.data, ref.weight.data, rtol=1e-13)
    np.testing.assert_allclose(model.bias.data, ref.bias.data, rtol=1e-13)
    unclipped = stubs.LinearModel(4, 2)
    Trainer(unclipped, stubs.MSELoss(), stubs.SGD(unclipped.parameters(), lr=0.05), regularizers=[L2(0.3)]).fit(
        x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert not np.allclose(unclipped.weight.data, ref.weight.data, rtol=1e-3)   # clipping did act


def test_clipnorm_is_per_parameter_global_clipnorm_is_joint():
    """The same gradients: clipnorm bounds each parameter's norm, global_clipnorm their joint norm."""
    def grads_after(**kw):
        pydl.manual_seed(0)
        model = nn.Linear(4, 2, dtype=np.float64)
        seen = {}

        class Spy(optim.SGD):
            def step(self, closure=None):
                seen.update({i: p.grad.copy() for i, p in enumerate(self.param_groups[0]["params"])})
                return super().step(closure)

        x, y = regression()
        Trainer(model, nn.MSELoss(), Spy(model.parameters(), lr=0.0), **kw).fit(
            x, y, epochs=1, batch_size=None, verbose=0)
        return [seen[0], seen[1]]

    raw = grads_after()
    per = grads_after(clipnorm=0.1)
    joint = grads_after(global_clipnorm=0.1)
    norms = [np.linalg.norm(g) for g in raw]
    assert min(norms) > 0.1 and max(norms) > 10 * min(norms)
    for g, r, n in zip(per, raw, norms):
        np.testing.assert_allclose(g, r * 0.1 / n, rtol=1e-14)           # each scaled to norm 0.1
    total = math.sqrt(sum(n * n for n in norms))
    for g, r in zip(joint, raw):
        np.testing.assert_allclose(g, r * 0.1 / total, rtol=1e-14)       # one factor for all
    assert np.linalg.norm(np.concatenate([g.ravel() for g in joint])) == pytest.approx(0.1, rel=1e-12)


def test_clipping_touches_only_the_optimized_parameters(stubs):
    x, y = regression()
    model = stubs.LinearModel(4, 2)
    seen = {}

    class FrozenBias(stubs.SGD):
        def step(self):
            seen["bias"] = model.bias.grad.copy()
            super().step()

    opt = FrozenBias([model.weight], lr=0.0)
    Trainer(model, stubs.MSELoss(), opt, global_clipnorm=1e-3).fit(x, y, epochs=1, batch_size=None, verbose=0)
    ref = stubs.LinearModel(4, 2)
    loss_fn = stubs.MSELoss()
    loss_fn(ref(x), y)
    ref.backward(loss_fn.backward())
    np.testing.assert_allclose(seen["bias"], ref.bias.grad, rtol=1e-14)   # not clipped: not optimized


def test_nonfinite_global_norm_gives_nan_gradients_as_keras(stubs):
    model = stubs.LinearModel(2, 1)
    opt = stubs.SGD(model.parameters())
    tr = Trainer(model, stubs.MSELoss(), opt, global_clipnorm=1.0)
    model.weight.grad = np.array([[np.inf, 1.0]])
    model.bias.grad = np.array([2.0])
    tr._clipper(tr._optimized_params())
    assert np.isnan(model.weight.grad).all() and np.isnan(model.bias.grad).all()


@pytest.mark.parametrize("kw,exc,match", [
    (dict(clipnorm=1.0, clipvalue=0.5), ValueError, "Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"),
    (dict(clipnorm=1.0, global_clipnorm=1.0), ValueError, "Only one of"),
    (dict(clipnorm=0.0), ValueError, r"clipnorm: expected a finite float > 0 or None \(None: no clipping\), got 0.0"),
    (dict(clipvalue=-1), ValueError, "clipvalue: expected a finite float > 0"),
    (dict(global_clipnorm=math.inf), ValueError, "global_clipnorm"),
    (dict(clipnorm="1"), TypeError, "clipnorm: expected a float > 0 or None, got str"),
])
def test_bad_clipping_arguments(stubs, kw, exc, match):
    model = stubs.LinearModel(2, 1)
    with pytest.raises(exc, match=match):
        Trainer(model, stubs.MSELoss(), stubs.SGD(model.parameters()), **kw)


# ----------------------------------------------------------------- per-batch schedulers
def classification(n=50, seed=1):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return (rng.normal(size=(n, 3)) + 2.0 * y[:, None]).astype(np.float32), y


class BatchLR(C.Callback):
    """The learning rate and SGD momentum each batch was trained with."""

    def __init__(self):
        self.lrs, self.moms = [], []

    def on_batch_begin(self, batch, logs=None):
        g = self.trainer.optimizer.param_groups[0]
        self.lrs.append(g["lr"])
        self.moms.append(g.get("momentum"))


def model_and_sgd():
    pydl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def torch_lrs(torch, make_sched, steps):
    """The lr and momentum before each of ``steps`` optimizer steps of torch's loop
    (optimizer.step(); scheduler.step() per batch)."""
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01, momentum=0.9)
    sched = make_sched(torch.optim, topt)
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(topt.param_groups[0]["lr"])
        moms.append(topt.param_groups[0]["momentum"])
        topt.step()
        sched.step()
    return lrs, moms


def one_cycle(mod, opt):
    return mod.lr_scheduler.OneCycleLR(opt, max_lr=0.3, epochs=4, steps_per_epoch=5)


def warmup_then_cosine(mod, opt):
    S = mod.lr_scheduler
    return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=6),
                                S.CosineAnnealingLR(opt, T_max=14)], milestones=[6])


@pytest.mark.parametrize("make_sched", [one_cycle, warmup_then_cosine])
def test_per_batch_schedule_follows_torchs_loop(make_sched):
    torch = pytest.importorskip("torch")
    x, y = classification()
    model, opt = model_and_sgd()
    spy = BatchLR()
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=[spy], lr_scheduler=make_sched(optim, opt),
                      scheduler_interval="batch")
    hist = trainer.fit(x, y, epochs=4, batch_size=10, verbose=0)       # 5 batches per epoch, 20 steps
    lrs, moms = torch_lrs(torch, make_sched, 20)
    np.testing.assert_allclose(spy.lrs, lrs, rtol=1e-12)
    np.testing.assert_allclose(spy.moms, moms, rtol=1e-12)
    assert hist.history["learning_rate"] == pytest.approx(lrs[::5], rel=1e-12)  # each epoch's first batch


def test_batch_logs_carry_the_learning_rate():
    x, y = classification()
    model, opt = model_and_sgd()
    logged = []

    class Log(C.Callback):
        def on_batch_end(self, batch, logs=None):
            logged.append(logs["learning_rate"])

    sched = lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=4)
    Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=[Log()], lr_scheduler=sched,
            scheduler_interval="batch").fit(x, y, epochs=2, batch_size=25, verbose=0)
    assert logged == pytest.approx([0.005, 0.00625, 0.0075, 0.00875])


def test_epoch_interval_is_the_default():
    x, y = classification()
    model, opt = model_and_sgd()
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler=lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    hist = trainer.fit(x, y, epochs=3, batch_size=10, verbose=0)
    assert hist.history["learning_rate"] == pytest.approx([0.01, 0.005, 0.0025])


def test_one_cycle_sized_in_batches_stepped_per_epoch_is_refused():
    x, y = classification()
    model, opt = model_and_sgd()
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler=one_cycle(optim, opt))
    with pytest.raises(ValueError, match=r"counts the 4 x 5 batches.*pass scheduler_interval='batch'"):
        trainer.fit(x, y, epochs=4, batch_size=10, verbose=0)


def test_one_cycle_shorter_than_the_fit_is_refused_up_front():
    x, y = classification()
    model, opt = model_and_sgd()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.3, epochs=3, steps_per_epoch=5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler=sched, scheduler_interval="batch")
    with pytest.raises(ValueError, match=r"15 of its total_steps=15 are left, this fit steps it 20 times.*"
                                         r"build it with epochs=4, steps_per_epoch=5"):
        trainer.fit(x, y, epochs=4, batch_size=10, verbose=0)
    assert sched.last_epoch == 0                                       # nothing ran


def test_per_batch_one_cycle_resumes_bitwise_after_a_crash(tmp_path):
    x, y = classification(n=53)

    def build(extra):
        model, opt = model_and_sgd()
        sched = lr_scheduler.OneCycleLR(opt, max_lr=0.2, epochs=5, steps_per_epoch=6)
        return Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=extra, lr_scheduler=sched,
                       scheduler_interval="batch", clipnorm=0.5)

    class Crash(Exception):
        pass

    class CrashAt(C.Callback):
        def __init__(self, at):
            self.at, self.epoch = at, None      # (a resumed run starts mid-epoch, without on_epoch_begin)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == self.at:
                raise Crash

    ref = build([])
    ref.fit(x, y, epochs=5, batch_size=9, verbose=0)
    with pytest.raises(Crash):
        build([CrashAt((2, 3)), C.BackupAndRestore(tmp_path, save_freq=1)]).fit(x, y, epochs=5, batch_size=9,
                                                                                verbose=0)
    backup = C.BackupAndRestore(tmp_path, save_freq=1)
    again = build([CrashAt(None), backup])
    again.fit(x, y, epochs=5, batch_size=9, verbose=0)
    assert backup.restored == {"epoch": 2, "batch": 3}         # batches 0-2 of epoch 2 were backed up
    for (k, v), v2 in zip(ref.model.state_dict().items(), again.model.state_dict().values()):
        assert v.tobytes() == v2.tobytes(), k
    assert ref.lr_scheduler.last_epoch == again.lr_scheduler.last_epoch == 30
    assert ref.history.history == again.history.history


@pytest.mark.parametrize("where", ["constructor", "fit"])
def test_scheduler_passed_as_a_callback_names_the_fix(where):
    x, y = classification()
    model, opt = model_and_sgd()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    match = (r"callbacks: got a learning-rate scheduler \(OneCycleLR\), not a Callback: pass it as "
             r"Trainer\(\.\.\., lr_scheduler=scheduler\).*LearningRateScheduler\(scheduler\)")
    with pytest.raises(TypeError, match=match):
        if where == "constructor":
            Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=[sched])
        else:
            Trainer(model, nn.CrossEntropyLoss(), opt).fit(x, y, epochs=1, verbose=0, callbacks=[sched])
    with pytest.raises(TypeError, match="expected Callback instances .* got int"):
        Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=[3])


def test_bad_scheduler_arguments():
    model, opt = model_and_sgd()
    other = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="lr_scheduler: was built on another optimizer"):
        Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler=lr_scheduler.StepLR(other, 2))
    with pytest.raises(ValueError, match="scheduler_interval: expected 'epoch' or 'batch', got 'step'"):
        Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler=lr_scheduler.StepLR(opt, 2), scheduler_interval="step")
    with pytest.raises(ValueError, match="scheduler_interval: expected 'epoch' or 'batch'"):
        Trainer(model, nn.CrossEntropyLoss(), opt, scheduler_interval="iteration")
    with pytest.raises(ValueError, match="ReduceLROnPlateau steps once per epoch"):
        Trainer(model, nn.CrossEntropyLoss(), opt, lr_scheduler=lr_scheduler.ReduceLROnPlateau(opt),
                scheduler_interval="batch")
