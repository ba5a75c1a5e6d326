"""BackupAndRestore in process (a crash is an exception raised from a callback), Trainer.fit's
initial_epoch, callbacks' get_state / set_state, ModelCheckpoint(save_optimizer=True) with
load_checkpoint. The subprocess SIGKILL tests are in test_backup_kill.py."""
import os

import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.train import Trainer, load_checkpoint
from pydl.train import callbacks as C


class Crash(Exception):
    pass


class CrashAt(C.Callback):
    """Raise Crash at the end of batch ``batch`` of epoch ``epoch`` (a process dying there)."""

    def __init__(self, epoch, batch=None):
        self.at, self.batch, self._epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if self.batch is not None and (self._epoch, batch) == (self.at, self.batch):
            raise Crash

    def on_epoch_end(self, epoch, logs=None):
        if self.batch is None and epoch == self.at:
            raise Crash


def data(n=103, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.7)
    return x, y


def build(callbacks, seed=0, early_stopping=True):
    """Model, optimizer and Trainer, rebuilt identically in every "process"."""
    pydl.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=0.02)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)
    cbs = [C.LearningRateScheduler(sched)] + callbacks
    if early_stopping:
        cbs.insert(1, C.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True))
    return Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=cbs, weight_noise=0.02,
                   transform=pydl.data.Mixup(0.3, num_classes=3))


def fit(trainer, **kw):
    x, y = data()
    return trainer.fit(x, y, epochs=kw.pop("epochs", 6), batch_size=kw.pop("batch_size", 8),
                       validation_split=0.2, verbose=0, **kw)


def assert_same_run(a, b):
    for (k, v), (k2, v2) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert k == k2 and v.dtype == v2.dtype and v.tobytes() == v2.tobytes(), k
    assert a.history.epoch == b.history.epoch
    assert a.history.history == b.history.history
    assert repr(a.optimizer.state_dict()) == repr(b.optimizer.state_dict())


@pytest.fixture
def reference():
    trainer = build([])
    fit(trainer)
    return trainer


@pytest.mark.parametrize("save_freq, crash, resume", [
    ("epoch", (2, 4), {"epoch": 2, "batch": 0}),
    ("epoch", (3, None), {"epoch": 3, "batch": 0}),
    (4, (2, 4), {"epoch": 2, "batch": 2}),        # 10 batches per epoch: backups at 4, 8, 12, ... overall
    (1, (1, 9), {"epoch": 1, "batch": 9}),
])
def test_crash_then_rerun_matches_uninterrupted(tmp_path, reference, save_freq, crash, resume):
    backup = C.BackupAndRestore(tmp_path / "bk", save_freq=save_freq)
    with pytest.raises(Crash):
        fit(build([CrashAt(*crash), backup]))
    assert (tmp_path / "bk" / "backup.npz").exists()       # a failed fit keeps its backup
    backup = C.BackupAndRestore(tmp_path / "bk", save_freq=save_freq)
    trainer = build([CrashAt(-1), backup])
    fit(trainer)
    assert backup.restored == resume
    assert_same_run(trainer, reference)
    assert not (tmp_path / "bk").exists()


def test_backup_holds_the_documented_state(tmp_path):
    backup = C.BackupAndRestore(tmp_path, delete_checkpoint=False)
    trainer = build([C.CSVLogger(tmp_path / "h.csv"), backup])
    fit(trainer, epochs=2)
    saved = pydl.load(backup.path)
    assert saved["format"] == "pydl-backup" and saved["version"] == 1
    t = saved["training"]
    assert t["epoch"] == 2 and t["batch"] == 0 and t["progress"] is None
    assert set(t["model"]) == set(trainer.model.state_dict())
    assert set(t["optimizer"]) == {"state", "param_groups"}
    assert set(t["rng"]) == {"pydl", "numpy", "python", "owned"}
    assert t["rng"]["pydl"] == pydl._random.generator().bit_generator.state
    assert t["history"]["epoch"] == [0, 1] and t["history"]["history"] == trainer.history.history
    assert [c["class"] for c in t["callbacks"]] == ["LearningRateScheduler", "EarlyStopping", "CSVLogger",
                                                    "BackupAndRestore"]
    es = t["callbacks"][1]["state"]
    assert set(es) == {"wait", "stopped_epoch", "best_epoch", "best", "sign", "best_weights"}
    assert t["callbacks"][0]["state"]["scheduler"]["last_epoch"] == 2


def test_keep_backup_then_rerun_trains_nothing(tmp_path, reference):
    fit(build([C.BackupAndRestore(tmp_path, delete_checkpoint=False)]))
    assert os.path.exists(tmp_path / "backup.npz")
    backup = C.BackupAndRestore(tmp_path, delete_checkpoint=False)
    trainer = build([backup])
    fit(trainer)
    assert backup.restored["batch"] == 0 and backup.restored["epoch"] == reference.history.epoch[-1] + 1
    assert_same_run(trainer, reference)


def test_int_save_freq_counts_batches_across_epochs(tmp_path, monkeypatch):
    from pydl import _io
    saves = []
    real = _io.save
    monkeypatch.setattr(_io, "save", lambda obj, path: (saves.append(obj["training"]["epoch"] * 100 +
                                                                     obj["training"]["batch"]), real(obj, path)))
    fit(build([C.BackupAndRestore(tmp_path / "bk", save_freq=7)]), epochs=3)
    # 82 samples, batch 8: 11 batches per epoch (the tail of 2 stays); after batches 7, 14, 21, 28
    assert saves == [7, 103, 110, 206]


def test_resumed_csv_log_is_byte_identical(tmp_path):
    (tmp_path / "ref.csv").write_text("previous run\n")
    (tmp_path / "run.csv").write_text("previous run\n")
    fit(build([C.CSVLogger(tmp_path / "ref.csv", append=True)]))
    with pytest.raises(Crash):
        fit(build([C.CSVLogger(tmp_path / "run.csv", append=True), CrashAt(3), C.BackupAndRestore(tmp_path / "b")]))
    assert (tmp_path / "run.csv").read_bytes().count(b"\n") == 1 + 4   # no header (append); row 3 written
    fit(build([C.CSVLogger(tmp_path / "run.csv", append=True), CrashAt(-1), C.BackupAndRestore(tmp_path / "b")]))
    assert (tmp_path / "run.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_backup_of_another_training_is_refused(tmp_path):
    with pytest.raises(Crash):
        fit(build([CrashAt(1), C.BackupAndRestore(tmp_path)]))
    with pytest.raises(ValueError, match="batch_size=8, this run has batch_size=16"):
        fit(build([CrashAt(1), C.BackupAndRestore(tmp_path)]), batch_size=16)
    with pytest.raises(ValueError, match="callbacks"):
        fit(build([C.BackupAndRestore(tmp_path)]))
    pydl.save({"w": np.zeros(2)}, tmp_path / "backup.npz")
    with pytest.raises(ValueError, match="not a BackupAndRestore backup"):
        fit(build([CrashAt(-1), C.BackupAndRestore(tmp_path)]))


def test_backup_and_restore_arguments(tmp_path):
    with pytest.raises(ValueError, match="backup_dir"):
        C.BackupAndRestore("")
    with pytest.raises(TypeError, match="backup_dir"):
        C.BackupAndRestore(3)
    for bad in (0, -2, "batch", True, 2.5, None):
        with pytest.raises(ValueError, match="save_freq"):
            C.BackupAndRestore(tmp_path, save_freq=bad)
    with pytest.raises(TypeError, match="delete_checkpoint"):
        C.BackupAndRestore(tmp_path, delete_checkpoint="yes")
    b = C.BackupAndRestore(tmp_path, save_freq=np.int64(3))
    assert b.save_freq == 3 and b.path == os.path.join(str(tmp_path), "backup.npz")
    with pytest.raises(ValueError, match="at most one BackupAndRestore"):
        fit(build([C.BackupAndRestore(tmp_path / "a"), C.BackupAndRestore(tmp_path / "b")]))


def test_delete_keeps_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    fit(build([C.BackupAndRestore(tmp_path)]), epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_backup_and_restore_needs_a_trainer(stubs, tmp_path):
    class Stub:
        pass
    cb = C.BackupAndRestore(tmp_path)
    cb.set_trainer(Stub())
    with pytest.raises(TypeError, match="Trainer"):
        cb.on_train_begin({})


def test_stop_mid_epoch_is_restored(tmp_path):
    """A callback stops training at a batch; a backup taken at that batch resumes stopped."""
    class StopAt(C.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 3 and self.trainer.history.epoch == [0]:
                self.trainer.stop_training = True

    ref = build([StopAt()])
    fit(ref)
    assert ref.history.epoch == [0, 1]
    with pytest.raises(Crash):
        fit(build([StopAt(), CrashAt(1), C.BackupAndRestore(tmp_path, save_freq=1)]))
    backup = C.BackupAndRestore(tmp_path, save_freq=1)
    trainer = build([StopAt(), CrashAt(-1), backup])
    fit(trainer)
    assert backup.restored == {"epoch": 1, "batch": 4}
    assert_same_run(trainer, ref)


# ---------------------------------------------------------------- initial_epoch
def test_initial_epoch_continues_a_fit_bitwise():
    whole = build([])
    fit(whole, epochs=5)
    parts = build([])
    fit(parts, epochs=3)
    h = fit(parts, epochs=5, initial_epoch=3)
    assert h is parts.history and h.epoch == [0, 1, 2, 3, 4]
    assert_same_run(parts, whole)


def test_initial_epoch_numbers_epochs():
    seen = []

    class Record(C.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    trainer = build([Record()])
    h = fit(trainer, epochs=4, initial_epoch=2)
    assert seen == [2, 3] and h.epoch == [2, 3] and len(h.history["loss"]) == 2
    assert fit(build([]), epochs=2, initial_epoch=5).epoch == []
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="initial_epoch"):
            fit(build([]), initial_epoch=bad)


# ---------------------------------------------------------------- callbacks' state
def test_callback_states_round_trip_through_a_file(tmp_path):
    trainer = build([C.TerminateOnNaN(verbose=0),
                     C.ModelCheckpoint(tmp_path / "m.npz", save_best_only=True),
                     C.LearningRateScheduler(optim.lr_scheduler.ReduceLROnPlateau(
                         optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0), patience=0))])
    fit(trainer, epochs=3)
    for cb in trainer.callbacks:
        state = cb.get_state()
        pydl.save({"s": state}, tmp_path / "s.npz")
        back = pydl.load(tmp_path / "s.npz")["s"]
        fresh = type(cb).__new__(type(cb))
        fresh.__dict__.update(cb.__dict__)
        fresh.set_state(back)
        assert repr(fresh.get_state()) == repr(state), type(cb).__name__
    assert C.Callback().get_state() is None


# ---------------------------------------------------------------- ModelCheckpoint(save_optimizer=True)
def test_model_checkpoint_with_optimizer_resumes_exactly(tmp_path):
    whole = build([], early_stopping=False)
    fit(whole, epochs=4)
    first = build([C.ModelCheckpoint(tmp_path / "ckpt.npz", save_optimizer=True)], early_stopping=False)
    fit(first, epochs=2)
    ckpt = pydl.load(tmp_path / "ckpt.npz")
    assert set(ckpt) == {"model", "optimizer"} and set(ckpt["optimizer"]) == {"state", "param_groups"}
    # a fresh "process": new objects, state from the file (RNG and scheduler carried by hand)
    rng_state = pydl._random.generator().bit_generator.state
    lr_state = first.callbacks[0].get_state()
    second = build([], early_stopping=False)
    load_checkpoint(tmp_path / "ckpt.npz", second.model, second.optimizer)
    pydl._random.generator().bit_generator.state = rng_state
    second.callbacks[0].set_state(lr_state)
    second.history = first.history
    fit(second, epochs=4, initial_epoch=2)
    assert_same_run(second, whole)


def test_load_checkpoint_errors_leave_objects_unchanged(tmp_path):
    trainer = build([])
    fit(trainer, epochs=1)
    pydl.save(trainer.model, tmp_path / "model_only.npz")
    model2 = build([]).model
    load_checkpoint(tmp_path / "model_only.npz", model2)
    for v, v2 in zip(trainer.model.state_dict().values(), model2.state_dict().values()):
        np.testing.assert_array_equal(v, v2)
    with pytest.raises(ValueError, match="optimizer: .* holds no optimizer state"):
        load_checkpoint(tmp_path / "model_only.npz", model2, trainer.optimizer)
    # a mismatched model: the optimizer, loaded first, is put back
    pydl.save({"model": {"w": np.zeros(3)}, "optimizer": trainer.optimizer.state_dict()}, tmp_path / "bad.npz")
    fresh = build([])
    before = repr(fresh.optimizer.state_dict())
    with pytest.raises((KeyError, ValueError)):
        load_checkpoint(tmp_path / "bad.npz", fresh.model, fresh.optimizer)
    assert repr(fresh.optimizer.state_dict()) == before
    with pytest.raises(TypeError, match="save_optimizer"):
        C.ModelCheckpoint(tmp_path / "x.npz", save_optimizer="yes")
