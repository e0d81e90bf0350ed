"""A real SMTP server for the tests: aiosmtpd, saving each message it receives as a file.

usage: python3 sink.py PORT DIR

Listens on 127.0.0.1:PORT and writes every message, as received (RFC 5322), to
DIR/<n>.eml, where <n> counts from 1. Prints "ready" once it accepts connections, then runs
until killed.
"""

import asyncio
import itertools
import os
import sys

from aiosmtpd.controller import Controller


class Save:
    def __init__(self, directory):
        self.directory = directory
        self.count = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.count)
        tmp = os.path.join(self.directory, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        # Renamed into place, so a reader never sees half a message.
        os.rename(tmp, os.path.join(self.directory, f"{n}.eml"))
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Save(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
