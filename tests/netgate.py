"""A TCP gate for tests: forwards connections to a server (a database) until it is closed, then drops every
connection and refuses new ones until it is opened again, as when the network to the database goes away."""

from __future__ import annotations

import socket
import threading


class Gate:
    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="gate", daemon=True).start()

    def close(self) -> None:
        """Drops every connection through the gate and refuses new ones."""
        with self._lock:
            self.open = False
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._sockets.clear()

    def reopen(self) -> None:
        with self._lock:
            self.open = True

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            with self._lock:
                if not self.open:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass
