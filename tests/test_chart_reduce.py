"""The chart's reduction of a line to its dot grid (pure): what gets plotted, and so when a redraw is due."""

from __future__ import annotations

import math

from qbconsole.tui.widgets.chart import ChartData, ChartSeries, _top, reduce_line

WINDOW = 60_000  # 60 columns of 1 s, 10 rows over [0, 10]


def reduce(points, columns=60, rows=10, top=10.0):
    return reduce_line(points, 0, WINDOW, top, columns, rows)


def test_each_column_keeps_its_lowest_and_highest_row_in_time_order():
    rising = [(10_000, 1.0), (10_300, 5.0), (10_600, 3.0)]  # one column: low first, then high
    falling = [(20_000, 9.0), (20_500, 2.0)]
    assert reduce(rising + falling) == ((10, 1), (10, 5), (20, 9), (20, 2))


def test_a_flat_column_is_one_point_and_values_snap_to_the_nearest_row():
    assert reduce([(5_000, 4.04), (5_900, 3.96)]) == ((5, 4),)


def test_gaps_outside_the_window_and_non_finite_values_are_dropped():
    points = [(-1, 5.0), (1_000, math.nan), (2_000, math.inf), (3_000, 2.0), (WINDOW + 1, 5.0)]
    assert reduce(points) == ((3, 2),)


def test_the_right_edge_belongs_to_the_last_column():
    assert reduce([(WINDOW, 7.0)]) == ((59, 7),)


def test_values_far_beyond_the_axis_are_clipped_not_an_error():
    assert reduce([(0, 1e308), (30_000, -1e308)], top=1.0) == ((0, 20), (30, -10))


def test_two_windows_that_look_alike_reduce_alike():
    a = [(t, 5.0 + (t % 3) * 0.01) for t in range(0, WINDOW, 250)]  # jitter below a row's height
    b = [(t, 5.0) for t in range(0, WINDOW, 250)]
    assert reduce(a) == reduce(b)
    assert reduce(a + [(WINDOW, 9.0)]) != reduce(b)  # a new high in the last column is a change


def test_the_axis_top_ignores_non_finite_and_absurd_peaks():
    data = ChartData((ChartSeries("x", ((0, math.inf), (1, 4.0))),), WINDOW, WINDOW)
    assert _top(data) == 4.0 * 1.15
    assert _top(ChartData((ChartSeries("x", ((0, 1e308),)),), WINDOW, WINDOW)) == 1.15
    assert _top(ChartData((), WINDOW, WINDOW, y_max=100.0)) == 100.0
