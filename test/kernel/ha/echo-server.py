# A real server for the HA tests: answers every line with "<name> <line>", on long-lived
# connections, so a client sees which real server each of its connections reaches.
import asyncio
import sys

NAME = sys.argv[1].encode()
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080


async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(NAME + b' ' + line)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, '0.0.0.0', PORT, backlog=512, reuse_address=True)
    print('listening', flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
