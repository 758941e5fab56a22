"""A host of its own for one run: a network namespace whose only way to the database is a veth
link that a test can drop and restore."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from tests.faults.fleet import require_tool


def _ip(*args: str) -> None:
    subprocess.run([require_tool("ip"), *args], check=True, capture_output=True, text=True)


class Forwarder:
    """Relay TCP connections from `listen` to `target`: the database listens on 127.0.0.1
    only, which another namespace cannot reach."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(listen)
        self.port = int(self._server.getsockname()[1])
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            self._open += [client, server]
            threading.Thread(target=self._relay, args=(client, server), daemon=True).start()

    @staticmethod
    def _relay(first: socket.socket, second: socket.socket) -> None:
        peers = {first: second, second: first}
        with contextlib.suppress(OSError):
            while True:
                readable, _, _ = select.select(list(peers), [], [])
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)

    def close(self) -> None:
        self._server.close()
        for each in self._open:
            with contextlib.suppress(OSError):
                each.close()


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    host_link: str
    host_address: str

    def prefix(self) -> list[str]:
        """Return the command prefix that runs a program inside the namespace."""
        return [require_tool("ip"), "netns", "exec", self.name]

    def cut(self) -> None:
        """Drop the link: packets are lost, sockets stay open on both sides, nothing is reset."""
        _ip("link", "set", self.host_link, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_link, "up")


@contextlib.contextmanager
def namespace() -> Iterator[Namespace]:
    """Make a network namespace joined to this one by a veth pair; remove both at the end."""
    require_tool("ip")
    tag = os.getpid() % 16000
    # Names and a /30 of this process's own: the field runs of two databases go side by side.
    name, host_link, inner_link = f"cr-ns-{tag}", f"crh{tag}", f"crn{tag}"
    subnet = f"10.231.{tag // 64}.{(tag % 64) * 4}"
    base = subnet.rsplit(".", 1)
    host_address = f"{base[0]}.{int(base[1]) + 1}"
    inner_address = f"{base[0]}.{int(base[1]) + 2}"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", inner_link)
        _ip("link", "set", inner_link, "netns", name)
        _ip("addr", "add", f"{host_address}/30", "dev", host_link)
        _ip("link", "set", host_link, "up")
        inside = ["netns", "exec", name, "ip"]
        _ip(*inside, "addr", "add", f"{inner_address}/30", "dev", inner_link)
        _ip(*inside, "link", "set", inner_link, "up")
        _ip(*inside, "link", "set", "lo", "up")
        yield Namespace(name, host_link, host_address)
    finally:
        # Deleting one end of a veth pair deletes both.
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "del", host_link)
        _ip("netns", "del", name)
