"""The modeled device of the pipeline benchmark: its latency table and its shared timeline."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from selfplay.evaluation.device_model import TABLES, TRAIN_STEP_FORWARDS, LatencyTable, device_model


def test_the_tables_give_the_measured_rates_at_the_measured_batches():
    h200 = TABLES["h200-128x10"]
    assert h200.rate(4096) == pytest.approx(1.05e6) and h200.rate(16384) == pytest.approx(1.27e6)
    assert h200.rate(256) == pytest.approx(143e3)  # fp32 is the faster path there...
    assert h200.path_for(256) == "fp32" and h200.path_for(1024) == "bf16"  # ... and bf16 from 1024 on
    assert TABLES["h200-32x3"].rate(4096) == pytest.approx(3.0e6)
    assert TABLES["h100-128x10"].rate(4096) == pytest.approx(1.0e6)  # the one H100 figure docs hold
    assert TABLES["h100-128x10"].seconds(256) == h200.seconds(256)  # small calls: launch-bound, unchanged


def test_latency_is_flat_below_the_table_linear_between_and_at_peak_rate_above():
    table = LatencyTable("t", {"x": {100: 1000.0, 1000: 5000.0}})  # 0.1 s and 0.2 s a call
    assert table.seconds(1) == table.seconds(100) == pytest.approx(0.1)
    assert table.seconds(550) == pytest.approx(0.15)
    assert table.seconds(4000) == pytest.approx(0.8)  # 5000 leaves/s beyond the largest measurement
    with pytest.raises(ValueError, match="positive"):
        LatencyTable("bad", {"x": {0: 1.0}})


def _launch_twice(device) -> None:
    device.launch(1024)
    device.launch(1024, learning=True)


def test_batches_queue_on_one_timeline_shared_with_child_processes():
    device = device_model("h200-128x10")
    with pytest.raises(ValueError, match="unknown device model"):
        device_model("tpu-1x1")
    before = device.counters()
    first = device.launch(1024)
    second = device.launch(1024)
    assert second >= first + TABLES["h200-128x10"].seconds(1024) - 1e-12  # the second waits for the first
    child = multiprocessing.get_context("spawn").Process(target=_launch_twice, args=(device,))
    child.start()
    child.join(60)
    logits, value = device(np.zeros((8, 3, 6, 7), np.float32), np.ones((8, 7), bool))
    assert not logits.any() and not value.any() and logits.shape == (8, 7)  # uniform priors, value 0
    after = device.counters()
    one = TABLES["h200-128x10"].seconds(1024)
    assert after["batches"] - before["batches"] == 4 and after["leaves"] - before["leaves"] == 3 * 1024 + 8
    assert after["busy_s"] - before["busy_s"] == pytest.approx(3 * one + TRAIN_STEP_FORWARDS * one + TABLES["h200-128x10"].seconds(8))
    assert after["train_busy_s"] == pytest.approx(TRAIN_STEP_FORWARDS * one)
    window = device.between(before, after)
    assert window["mean_batch"] == pytest.approx((3 * 1024 + 8) / 4)
