"""Taking the hypervisor's steal off the flow's longest gap."""

from __future__ import annotations

from pathlib import Path

from bench.steal import StealMonitor, less_steal, read_steal


def test_steal_inside_a_gap_is_taken_off_and_steal_elsewhere_is_not(tmp_path: Path) -> None:
    m = StealMonitor(tmp_path / "s.json")
    # two CPUs; CPU 1 loses 40 ms between t=10.00 and 10.05, CPU 0 loses 30 ms around t=20
    m.samples = [(9.0, [0.0, 0.0]), (10.05, [0.0, 40.0]), (20.02, [30.0, 40.0])]
    assert m.steal_ms(9.99, 10.06) == 40.0
    assert m.steal_ms(10.1, 19.9) == 0.0
    gaps = [(0.055, 10.06), (0.045, 15.0)]  # 55 ms with 40 stolen; 45 ms with none
    assert less_steal(gaps, m, floor=12.0) == 45.0
    assert less_steal([(0.055, 10.06)], m, floor=12.0) == 15.0


def test_monitor_samples_this_machine(tmp_path: Path) -> None:
    assert len(read_steal()) >= 1
    with StealMonitor(tmp_path / "s.json") as m:
        pass
    assert m.samples and len(m.samples[0][1]) == len(read_steal())
