"""`free_port` hands out loopback ports below the kernel's ephemeral range (which outgoing
connections take from, so a server's port chosen there can be gone by the time it binds), never
the same port twice, and only ports nothing listens on."""

import socket

from nps_kit.devstack import free_port
from nps_kit.devstack.process import _ephemeral_range


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert all(1024 <= p < low for p in ports)
    assert len(set(ports)) == len(ports)
    for port in ports[:5]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_not_handed_out() -> None:
    low, _ = _ephemeral_range()
    taken = []
    try:
        # Occupy a stretch of the range; none of it may come back.
        for port in range(low - 200, low):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.listen()
            taken.append(sock)
        occupied = {s.getsockname()[1] for s in taken}
        assert not occupied & {free_port() for _ in range(200)}
    finally:
        for sock in taken:
            sock.close()
