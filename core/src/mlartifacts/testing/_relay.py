"""A TCP relay for fault tests: ``python -m mlartifacts.testing._relay PORT HOST TARGET_PORT``.

It forwards every connection on 127.0.0.1:PORT to HOST:TARGET_PORT. Stopped with
SIGSTOP, it behaves as a hung storage server (connections are accepted by the
kernel, nothing is answered), without stopping the real server shared by a session.
"""

from __future__ import annotations

import socket
import sys
import threading


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(port: int, host: str, target: int) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection((host, target))
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
