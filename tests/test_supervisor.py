"""The watcher of a distributed run's process says, in annc's words, why native code
ended it (`annc.supervisor`); the processes themselves are in test_distributed.py."""

from __future__ import annotations

import signal

from annc.supervisor import ANNC_LINE, NATIVE_LINE, why_it_ended

# What JAX 0.10's coordination service printed in process 0 when process 1 was killed
# mid-run (2026-12-08, two processes on localhost), before its stack.
HEARTBEAT = """\
E1208 02:53:12.223437    9770 coordination_service.cc:1549] [3025067458318375843] Use error polling to propagate the following error to all tasks: UNAVAILABLE: The following tasks are unhealthy (stopped sending heartbeats):
1
The tasks have crashed. Check the task logs for an earlier error, or scheduler events (e.g. preemption, eviction) to debug further. [type.googleapis.com/tensorflow.CoordinationServiceError='']
F1208 02:53:12.224156    9781 client.h:80] Terminating process because the JAX distributed service detected fatal errors. This most likely indicates that another task died; see the other task logs for more details.
*** Check failure stack trace: ***
    @     0x7fe5e80e0634  absl::lts_20260107::log_internal::LogMessage::SendToLog()
""".splitlines()  # noqa: E501


def test_a_dead_peer_is_named_from_the_unhealthy_tasks() -> None:
    line = why_it_ended(-signal.SIGABRT, HEARTBEAT, 0)
    assert line.startswith("annc: distributed run abandoned: process 1 stopped answering")
    assert "ended process 0 (signal SIGABRT)" in line


def test_a_process_named_by_its_task_path_is_found_too() -> None:
    line = why_it_ended(-signal.SIGABRT, ["E1208 x] heartbeat timeout for "
                                         "/job:jax_worker/replica:0/task:3"], 1)
    assert "process 3 stopped answering" in line


def test_without_a_named_peer_the_coordinator_may_be_the_one_that_stopped() -> None:
    line = why_it_ended(-signal.SIGABRT, ["F1208 02:53:12.2 9781 client.h:80] Terminating "
                                         "process because the JAX distributed service "
                                         "detected fatal errors."], 1)
    assert "the coordinator (process 0), stopped answering" in line


def test_another_native_end_is_said_with_its_last_line_without_the_log_prefix() -> None:
    line = why_it_ended(-signal.SIGSEGV, ["F1208 02:53:12.224156 9781 foo.cc:80] out of "
                                         "cheese"], None)
    assert line == ("annc: distributed run abandoned: this process ended with signal "
                    "SIGSEGV: out of cheese")


def test_native_lines_are_told_from_annc_s_own() -> None:
    for native in (HEARTBEAT[0], HEARTBEAT[3], HEARTBEAT[4], HEARTBEAT[5],
                   "[Gloo] Rank 0 is connected to 1 peer ranks."):
        assert NATIVE_LINE.match(native + "\n"), native
    for own in ("annc: distributed run failed while running: process 1: ...",
                "note: the models are 12 days old"):
        assert not NATIVE_LINE.match(own) and ANNC_LINE.match(own)


def test_only_a_distributed_run_outside_the_child_is_watched(monkeypatch) -> None:
    from annc.supervisor import WORKER, watched_run

    monkeypatch.delenv(WORKER, raising=False)
    assert watched_run(["run", "f.ann", "-D", "N=4", "--distributed", "--process-id", "1"]) \
        == (True, 1)
    assert watched_run(["run", "f.ann", "--distributed"]) == (True, None)
    assert watched_run(["run", "f.ann"]) == (False, None)
    assert watched_run(["compile", "f.ann", "--distributed"]) == (False, None)
    assert watched_run(["calibrate", "--communication", "--distributed", "--process-id", "0"]
                       ) == (True, 0)
    monkeypatch.setenv(WORKER, "1")
    assert watched_run(["run", "f.ann", "--distributed"]) == (False, None)
