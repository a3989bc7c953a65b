"""A TCP relay for fault tests: ``python -m mlartifacts.testing._relay PORT HOST TARGET_PORT [LATENCY]``.

It forwards every connection on 127.0.0.1:PORT to HOST:TARGET_PORT. Stopped with
SIGSTOP, it behaves as a hung storage server (connections are accepted by the
kernel, nothing is answered), without stopping the real server shared by a session.
With LATENCY (seconds), what a client sends is held that long before it is passed
on: each request pays a round trip, as over a network (for benchmarks).
"""

from __future__ import annotations

import socket
import sys
import threading
import time


def _pump(src: socket.socket, dst: socket.socket, latency: float = 0.0) -> None:
    try:
        while data := src.recv(65536):
            if latency:
                time.sleep(latency)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(port: int, host: str, target: int, latency: float = 0.0) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection((host, target))
        except OSError:
            client.close()
            continue
        threading.Thread(target=_pump, args=(client, upstream, latency), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
