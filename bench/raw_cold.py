"""`python -m bench.raw_cold PORT USER PASSWORD_ENV`: the raw limit from a cold start.

The daemon's backlog clock starts when its process is spawned; `bench.ingest.raw_limit`
runs in the benchmark's warm process, logged in already. This does the same FETCH and
parse in a new interpreter, so the time from spawn to exit (measured by the caller) also
holds what any process pays before its first message: the interpreter, importing
imapclient and the parser, and the IMAP login. Prints how many messages it parsed.

It imports nothing of the benchmark (bench.stack would pull in psycopg and aiosmtpd).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    port, user, password_env = int(argv[0]), argv[1], argv[2]
    batch = int(argv[3]) if len(argv) > 3 else 500
    import imapclient

    from daemon.mail.parse import parse_message

    client = imapclient.IMAPClient("127.0.0.1", port=port, ssl=False, timeout=60)
    client.login(user, os.environ[password_env])
    count = 0
    try:
        client.select_folder("INBOX", readonly=True)
        uids = sorted(client.search("ALL"))
        for start in range(0, len(uids), batch):
            for item in client.fetch(uids[start : start + batch], ["BODY.PEEK[]"]).values():
                parse_message(bytes(item[b"BODY[]"]))
                count += 1
    finally:
        client.logout()
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
