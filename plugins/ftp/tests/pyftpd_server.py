"""A pyftpdlib server for the tests: a password user, a read-only user, anonymous, TLS when asked.

    python pyftpd_server.py PORT ROOT USER PASSWORD READER READER_PASSWORD [CERTFILE KEYFILE]

Logs every login ("USER 'x' logged in.") on stderr, which the fixture captures.
"""

from __future__ import annotations

import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> None:
    port, root = int(sys.argv[1]), sys.argv[2]
    user, password, reader, reader_password = sys.argv[3:7]
    anon = os.path.join(root, "anon")
    os.makedirs(anon, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elradfmwMT")
    authorizer.add_user(reader, reader_password, root, perm="elr")
    authorizer.add_anonymous(anon, perm="elradfmw")
    handler: type[FTPHandler] = FTPHandler
    if len(sys.argv) > 8:
        from pyftpdlib.handlers import TLS_FTPHandler

        TLS_FTPHandler.certfile, TLS_FTPHandler.keyfile = sys.argv[7], sys.argv[8]
        handler = TLS_FTPHandler  # AUTH TLS is offered; plain ftp:// works too
    handler.authorizer = authorizer
    handler.banner = "mlartifacts test server"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    server = FTPServer(("127.0.0.1", port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
