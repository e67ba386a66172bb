"""The dev stack's supervisor: every child process it started — the broker, PostgreSQL, the
four services — is checked, and one that died is reaped, reported and started again, with
a backoff that doubles on each failed start (1 s up to 30 s) and resets once a start works.

The services need nothing from it after a restart of the broker or of PostgreSQL: they
reconnect by themselves. The embedded broker keeps everything in memory, so a restarted one
has no topics: `after_restart` re-creates them (the events it held are lost, see
docs/operations.md).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Child(Protocol):
    def alive(self) -> bool:
        """Whether it runs; reaps it if it died."""
        ...

    def restart(self) -> None:
        """Start it again (raising if it does not come up)."""
        ...


@dataclass
class Supervised:
    name: str
    child: Child
    #: Runs after each successful restart (the broker's topics).
    after_restart: Callable[[], None] | None = None
    restarting: bool = False
    failures: int = 0
    next_attempt: float = 0.0


@dataclass
class Supervisor:
    say: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    children: list[Supervised] = field(default_factory=list)

    def watch(
        self, name: str, child: Child, *, after_restart: Callable[[], None] | None = None
    ) -> None:
        self.children.append(Supervised(name, child, after_restart))

    def check(self) -> None:
        """One round: restart what died, when its backoff allows. Call it every second or so."""
        for item in self.children:
            if item.child.alive() and not item.restarting:
                continue
            now = self.clock()
            if now < item.next_attempt:
                continue
            if not item.restarting:
                item.restarting = True
                self.say(f"{item.name} exited; restarting it")
            try:
                if not item.child.alive():
                    item.child.restart()
                if item.after_restart is not None:
                    item.after_restart()
            except Exception as exc:  # any failure to start is retried
                item.failures += 1
                wait = min(self.initial_backoff * 2 ** (item.failures - 1), self.max_backoff)
                item.next_attempt = now + wait
                self.say(f"{item.name} did not start ({exc}); next try in {wait:.0f}s")
            else:
                self.say(f"{item.name} is back")
                item.restarting = False
                item.failures = 0
                item.next_attempt = 0.0
