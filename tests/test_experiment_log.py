"""The assignment log on a real disk: every accepted exposure written once, across rotations and a close;
a folder it cannot write is refused at startup with the reason; a folder that goes away is reported, the
buffer stays bounded (drops counted, offers never wait) and nothing accepted is lost when it comes back."""
from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events.exposures import exposure_line, read_exposures
from serving.assignment_log import AssignmentLog, check_log_dir

T = datetime(2026, 3, 1, tzinfo=UTC)


def lines(n: int, start: int = 0) -> list[str]:
    return [exposure_line(T, "exp-1", "a" if i % 2 else "b", f"u{i}", "3", f"r{i}") for i in range(start, start + n)]


def open_log(folder: Path, **overrides) -> AssignmentLog:
    settings = {"max_file_mb": 64.0, "max_file_minutes": 60.0, "queue_size": 100_000, "fsync_seconds": 5.0,
                "min_free_mb": 1.0, **overrides}
    return AssignmentLog(folder, "exp-1", **settings)


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_accepted_exposure_is_written_once_across_rotations(tmp_path) -> None:
    log = open_log(tmp_path, max_file_mb=0.02)  # rotate past 20 KB: every second batch of 100 lines (~12 KB)
    for start in range(0, 3000, 100):
        assert log.offer(lines(100, start)) == 0
        wait_for(lambda: log.written == start + 100)  # one write per batch (a file grows by whole writes)
    assert log.close() == 0
    read = read_exposures(tmp_path)
    assert read.files == 15 and read.truncated_lines == 0
    assert sorted(read.exposures["request_id"]) == sorted(f"r{i}" for i in range(3000))
    assert log.offer(lines(1)) == 1  # after close: dropped and counted, never written
    assert len(read_exposures(tmp_path).exposures) == 3000


def test_close_writes_everything_accepted_before_it_returns(tmp_path) -> None:
    log = open_log(tmp_path, queue_size=200_000)
    for start in range(0, 200_000, 1000):
        assert log.offer(lines(1000, start)) == 0
    assert log.close() == 0  # no waiting before it: close itself must drain the buffer
    assert len(read_exposures(tmp_path).exposures) == 200_000


def test_an_idle_file_is_closed_after_its_age_and_the_next_exposure_opens_a_new_one(tmp_path) -> None:
    log = open_log(tmp_path, max_file_minutes=0.01)  # 0.6 s
    log.offer(lines(5))
    wait_for(lambda: log.written == 5)
    time.sleep(2.0)
    log.offer(lines(5, 5))
    log.close()
    assert read_exposures(tmp_path).files == 2


@pytest.mark.parametrize("make_bad", [
    lambda tmp: (tmp / "a-file").write_text("x") and tmp / "a-file" / "log",  # below a file: not a folder
    lambda tmp: Path("/proc/signals-log"),  # nothing can be written there, not even by root
])
def test_a_folder_that_cannot_be_written_is_refused_at_startup_with_the_reason(tmp_path, make_bad) -> None:
    with pytest.raises(OSError) as err:
        open_log(make_bad(tmp_path))
    assert str(err.value)


def test_a_disk_without_the_required_free_space_is_refused(tmp_path) -> None:
    with pytest.raises(OSError, match="MB free, below the 1e[+]09 MB required"):
        check_log_dir(tmp_path, min_free_mb=1e9)


def test_a_folder_that_goes_away_is_reported_the_buffer_stays_bounded_and_nothing_accepted_is_lost(tmp_path) -> None:
    folder = tmp_path / "log"
    log = open_log(folder, max_file_minutes=0.005, queue_size=500)  # files close after 0.3 s
    log.offer(lines(10))
    wait_for(lambda: log.written == 10)
    time.sleep(1.0)  # the file closes
    shutil.rmtree(folder)
    log.offer(lines(100, 10))
    assert "No such file or directory" in log.problem()  # before any write: the free-space check
    wait_for(lambda: log.write_error is not None)
    assert f"cannot write under {folder}" in log.problem()
    started = time.monotonic()
    dropped = log.offer(lines(1000, 110))
    assert time.monotonic() - started < 0.05, "an offer must never wait for the disk"
    assert dropped == 600 and log.dropped == 600  # 100 + 400 fill the buffer of 500
    folder.mkdir()
    wait_for(lambda: log.problem() is None)
    assert log.close() == 0
    written = read_exposures(folder).exposures["request_id"]
    assert sorted(written) == sorted(f"r{i}" for i in range(10, 510)) and written.is_unique


def test_a_last_line_cut_off_by_a_kill_is_skipped_and_counted(tmp_path) -> None:
    (tmp_path / "exposures-exp-1-x-h-1.jsonl").write_text("".join(lines(3)) + lines(1, 3)[0][:25])
    read = read_exposures(tmp_path)
    assert len(read.exposures) == 3 and read.truncated_lines == 1


def test_a_malformed_line_inside_a_file_is_an_error_naming_file_and_line(tmp_path) -> None:
    path = tmp_path / "exposures-exp-1-x-h-1.jsonl"
    path.write_text(lines(1)[0] + "{not json\n" + lines(1)[0])
    with pytest.raises(Exception, match=f"{path}:2: not a JSON exposure line"):
        read_exposures(tmp_path)
