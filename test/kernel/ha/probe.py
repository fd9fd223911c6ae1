# Short connections from fixed source ports through a VIP: each sends a line, reads which real
# server answered, and is reset (SO_LINGER 0) so the same 5-tuple can be used again at once.
# Prints one JSON object: source port -> real server (or "error: ...").
import asyncio
import json
import socket
import struct
import sys

VIP, PORT, SOURCE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
PORTS = [int(p) for p in sys.argv[4].split(',')]
results = {}


async def probe(port, limit):
    async with limit:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        sock.setblocking(False)
        try:
            sock.bind((SOURCE, port))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (VIP, PORT)), 20)
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b'probe\n')
            line = await asyncio.wait_for(reader.readline(), 20)
            results[port] = line.split(b' ', 1)[0].decode() or 'error: no answer'
            writer.transport.abort()
        except Exception as error:  # noqa: BLE001 - reported per port
            results[port] = f'error: {error!r}'
            sock.close()


async def main():
    limit = asyncio.Semaphore(20)
    await asyncio.gather(*(probe(p, limit) for p in PORTS))
    print(json.dumps(results), flush=True)

asyncio.run(main())
