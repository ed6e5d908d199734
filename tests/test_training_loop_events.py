"""When the accelerate scripts evaluate, checkpoint and stop inside and at the end of an epoch."""

from lion_hf.training import epoch_end_checkpoint, step_events


def test_step_events_inside_an_epoch():
    # 10 batches per epoch, evaluate every 4 steps, checkpoint every 6, 12 steps in all
    events = {step: step_events(step, step, 10, 12, 4, 6) for step in range(1, 10)}
    assert [s for s, (ev, _, _) in events.items() if ev] == [4, 8]
    assert [s for s, (_, ck, _) in events.items() if ck] == [6]
    assert not any(stop for _, _, stop in events.values())
    assert step_events(12, 2, 10, 12, None, None) == (False, False, True), "the last step stops mid-epoch"
    assert step_events(8, 10, 10, 12, 4, 8) == (False, False, False), "an epoch's last batch leaves it to the epoch end"
    assert step_events(8, 10, None, 12, 4, 8) == (True, True, False), "a stream has no epoch end"


def test_epoch_end_checkpoint():
    assert epoch_end_checkpoint(10, None, "epoch") and epoch_end_checkpoint(10, 5, "5")
    assert not epoch_end_checkpoint(10, 3, "3") and not epoch_end_checkpoint(10, None, None)
