"""`kore-voice serve` as a new user starts it: its one ready line says where the browser console is, and the
URLs it names answer (a real process, real sockets)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from doors.test_rest_e2e import Served


def test_the_ready_line_names_the_console_and_the_front_door_leads_there(tmp_path: Path):
    served = Served(tmp_path / "service.log")
    try:
        assert served.line.rstrip().endswith(f"; browser console: {served.url}/console"), served.line
        with urllib.request.urlopen(f"{served.url}/console", timeout=30) as page:
            assert page.headers.get_content_type() == "text/html"
        front = urllib.request.Request(served.url + "/", headers={"Accept": "text/html"})
        with urllib.request.urlopen(front, timeout=30) as page:  # followed to the console
            assert (page.url, page.headers.get_content_type()) == (f"{served.url}/console", "text/html")
    finally:
        assert served.stop() == 0
