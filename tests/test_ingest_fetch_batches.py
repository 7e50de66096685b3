"""IMAP fetches bounded in bytes as well as in count: sizes (RFC822.SIZE) first, then batches."""

from __future__ import annotations

from mailtickets.ingest.imap_session import parse_sizes, size_batches


def test_sizes_are_read_whichever_order_the_server_writes_the_items() -> None:
    lines = [b"1 FETCH (UID 7 RFC822.SIZE 1200)", b"2 FETCH (RFC822.SIZE 30 UID 9)", b"UID FETCH completed"]
    assert parse_sizes(lines) == {7: 1200, 9: 30}


def test_batches_are_bounded_in_bytes_and_in_count() -> None:
    sizes = {1: 40, 2: 40, 3: 40, 4: 10, 5: 10, 6: 10}
    assert size_batches([1, 2, 3, 4, 5, 6], sizes, max_count=100, max_bytes=90) == [[1, 2], [3, 4, 5, 6]]
    assert size_batches([4, 5, 6], sizes, max_count=2, max_bytes=1000) == [[4, 5], [6]]


def test_a_mail_larger_than_the_byte_bound_comes_alone() -> None:
    assert size_batches([1, 2, 3], {1: 5, 2: 500, 3: 5}, max_count=10, max_bytes=100) == [[1], [2], [3]]
    assert size_batches([], {}, max_count=10, max_bytes=100) == []
