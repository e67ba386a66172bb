"""The serving process's garbage-collector setting (`nps_kit.service.serve`, every service)."""

import gc
from collections.abc import Iterator

import pytest

from nps_kit.service import YOUNG_GENERATION_THRESHOLD, tune_collector


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """Python's defaults for the test (another test may have run a service's `serve`
    in this process), the process's own afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    gc.set_threshold(*before)


def test_serving_collects_the_youngest_generation_less_often(
    thresholds: tuple[int, int, int],
) -> None:
    tune_collector()
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, thresholds[1], thresholds[2])


def test_a_batch_of_garbage_cycles_is_still_collected(thresholds: tuple[int, int, int]) -> None:
    """Cycles wait longer, not forever: allocating past the threshold collects them."""
    tune_collector()

    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.collect()
    collected_before = sum(s["collected"] for s in gc.get_stats())
    for _ in range(YOUNG_GENERATION_THRESHOLD * 2):
        Node()
    assert sum(s["collected"] for s in gc.get_stats()) > collected_before
