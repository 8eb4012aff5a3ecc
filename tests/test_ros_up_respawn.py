"""``vsis ros up`` restarts a node that exits on its own, a bounded number of times."""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

ros_cli = pytest.importorskip("vis_node.ros.cli")


def _commands(crashing: str) -> list[list[str]]:
    """Two well-behaved "nodes" and one running ``crashing`` (Python source)."""
    wait = "import time\nwhile True: time.sleep(0.05)"
    return [
        [sys.executable, "-c", wait],
        [sys.executable, "-c", crashing],
        [sys.executable, "-c", wait],
    ]


def test_a_node_that_keeps_dying_stops_the_graph_after_the_restarts(tmp_path, monkeypatch, capsys):
    starts = tmp_path / "starts"
    crashing = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    monkeypatch.setattr(ros_cli, "node_commands", lambda args: _commands(crashing))
    monkeypatch.setattr(ros_cli, "RESPAWN_DELAY_S", 0.0)
    assert ros_cli.run_up([]) == 1
    assert starts.read_text() == "x" * (1 + ros_cli.MAX_RESPAWNS)
    err = capsys.readouterr().err
    assert err.count("restarting it") == ros_cli.MAX_RESPAWNS
    assert f"after {ros_cli.MAX_RESPAWNS} restarts; stopping the others" in err


def test_a_node_that_dies_once_is_restarted_and_the_graph_keeps_running(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "crashed"
    running = tmp_path / "running"
    crashing = (
        "import os, time\n"
        f"if not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close(); raise SystemExit(1)\n"
        f"open({str(running)!r}, 'w').close()\n"
        "while True: time.sleep(0.05)"
    )
    monkeypatch.setattr(ros_cli, "node_commands", lambda args: _commands(crashing))
    monkeypatch.setattr(ros_cli, "RESPAWN_DELAY_S", 0.0)

    def stop_when_restarted() -> None:
        for _ in range(600):
            if running.exists():
                break
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=stop_when_restarted, daemon=True).start()
    assert ros_cli.run_up([]) == 0
    assert running.exists()
    assert capsys.readouterr().err.count("restarting it (1 of") == 1
