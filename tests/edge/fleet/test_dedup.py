"""SeenNumbers keeps runs of the numbers seen: any order of arrival, each number new once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wedge.edge.fleet.dedup import SeenKeys, SeenNumbers


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=400))
def test_each_number_is_new_exactly_once_and_the_runs_are_the_numbers_seen(numbers: list[int]) -> None:
    seen = SeenNumbers()
    new = [n for n in numbers if seen.add(n)]
    assert sorted(new) == sorted(set(numbers))
    expected: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if expected and expected[-1][1] == n:
            expected[-1] = (expected[-1][0], n + 1)
        else:
            expected.append((n, n + 1))
    assert seen.runs() == expected


def test_keys_of_one_device_in_two_epochs_do_not_collide() -> None:
    keys = SeenKeys()
    assert keys.add("ring", 1, 5) and keys.add("ring", 2, 5) and keys.add("other", 1, 5)
    assert not keys.add("ring", 1, 5)
    assert keys.runs("ring", 2) == [(5, 6)] and keys.runs("ring", 9) == []
