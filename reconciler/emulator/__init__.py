"""A faithful Moodle 4.5 web-service emulator for tests, benchmarks and the demo: takes seed
data and REST calls, gives the answers a real site gives. It imports nothing of the client.

It serves ``/webservice/rest/server.php`` over HTTP on 127.0.0.1 and reproduces what the
recorded real site answered (``tests/data/moodle/session-shared.jsonl``).
"""

from .config import EmulatorConfig
from .emulator import MoodleEmulator

__all__ = ["EmulatorConfig", "MoodleEmulator"]
