"""The bridge's per-device ordering: in-order release, duplicate drops, named gaps, lost numbers."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from wedge.edge.bridge.sequencer import Sequencer


@dataclass(frozen=True)
class R:
    seq: int


def seqs(records: list[R]) -> list[int]:
    return [r.seq for r in records]


def test_records_behind_a_gap_wait_until_backfill_fills_it() -> None:
    s: Sequencer[R] = Sequencer(0)
    assert seqs(s.offer(R(0))) == [0]
    assert s.offer(R(2)) == [] and s.offer(R(3)) == []
    assert s.missing() == [(1, 2)]
    assert seqs(s.offer(R(1))) == [1, 2, 3]
    assert s.missing() == []


def test_duplicates_and_old_numbers_are_dropped_and_counted() -> None:
    s: Sequencer[R] = Sequencer(5)
    s.offer(R(5))
    s.offer(R(7))
    assert s.offer(R(5)) == [] and s.offer(R(7)) == [] and s.offer(R(3)) == []
    assert s.counters.duplicates == 3


def test_the_device_s_newest_number_opens_a_tail_gap() -> None:
    s: Sequencer[R] = Sequencer(10)
    s.note_device_next(14)
    assert s.missing() == [(10, 14)]


def test_giving_up_counts_what_never_came_and_releases_what_did() -> None:
    s: Sequencer[R] = Sequencer(0)
    s.offer(R(2))
    s.offer(R(4))
    assert seqs(s.give_up(3)) == [2]
    assert s.counters.lost == 2 and s.next_seq == 3
    assert seqs(s.give_up(5)) == [4]
    assert s.counters.lost == 3


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_gap_older_than_the_hold_lets_the_stream_go_on_and_its_records_come_later_once() -> None:
    clock = Clock()
    s: Sequencer[R] = Sequencer(0, hold_s=1.0, clock=clock)
    s.offer(R(0))
    assert s.offer(R(2)) == []
    clock.now = 1.5
    assert seqs(s.offer(R(3))) == [2, 3]
    assert s.missing() == [(1, 2)] and s.counters.out_of_order == 2
    assert seqs(s.offer(R(1))) == [1]
    assert s.next_seq == 4 and s.missing() == []
    assert s.offer(R(2)) == [] and s.counters.duplicates == 1


def test_a_quiet_stream_releases_its_held_records_on_expiry() -> None:
    clock = Clock()
    s: Sequencer[R] = Sequencer(0, hold_s=1.0, clock=clock)
    s.offer(R(5))
    clock.now = 2.0
    assert seqs(s.expire()) == [5]


def test_holding_too_many_records_releases_them_before_the_hold_ends() -> None:
    s: Sequencer[R] = Sequencer(0, max_held=3)
    released: list[R] = []
    for seq in (1, 2, 3, 4):
        released += s.offer(R(seq))
    assert seqs(released) == [1, 2, 3, 4] and s.counters.lost == 0 and s.missing() == [(0, 1)]


def test_giving_up_after_an_expired_hold_counts_only_what_never_came() -> None:
    clock = Clock()
    s: Sequencer[R] = Sequencer(0, hold_s=0.5, clock=clock)
    s.offer(R(3))
    clock.now = 1.0
    s.expire()
    assert s.give_up(4) == [] and s.counters.lost == 3 and s.next_seq == 4


def test_stopping_releases_every_held_record() -> None:
    s: Sequencer[R] = Sequencer(0, clock=lambda: 0.0)
    s.offer(R(3))
    s.offer(R(2))
    assert seqs(s.release_all()) == [2, 3] and s.held == 0


def test_a_fresh_sequencer_starts_at_the_first_record_it_sees() -> None:
    s: Sequencer[R] = Sequencer()
    assert seqs(s.offer(R(40))) == [40]


@given(st.permutations(list(range(60))), st.lists(st.integers(0, 59), max_size=30))
def test_any_arrival_order_with_repeats_releases_each_number_once_in_order(order: list[int], repeats: list[int]) -> None:
    s: Sequencer[R] = Sequencer(0, clock=lambda: 0.0)
    released: list[R] = []
    for seq in order + repeats:
        released += s.offer(R(seq))
    assert seqs(released) == list(range(60))
    assert s.counters.duplicates == len(repeats)


def test_numbers_the_sinks_hold_are_neither_gaps_nor_released_again() -> None:
    s: Sequencer[R] = Sequencer(0, covered=[(0, 5), (8, 10)])
    assert s.next_seq == 5
    s.note_device_next(12)
    assert s.missing() == [(5, 8), (10, 12)]
    assert s.offer(R(9)) == [] and s.counters.duplicates == 1
    assert seqs(s.offer(R(5))) == [5]


def test_given_up_numbers_are_kept_as_ranges_for_the_sinks() -> None:
    s: Sequencer[R] = Sequencer(0, covered=[(3, 5)])
    s.offer(R(6))
    s.give_up(9)
    assert s.take_lost() == [(0, 3), (5, 6), (7, 9)] and s.counters.lost == 6
    assert s.take_lost() == []
