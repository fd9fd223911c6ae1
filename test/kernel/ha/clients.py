# N long-lived TCP connections through a VIP, each sending a line every INTERVAL seconds and
# waiting for the answer ("<real server> <line>"). Prints a STATUS JSON line every 0.5 s:
# connections open and lost (with the error), answers from another real server than the
# connection's first, and for each mark (stdin: "mark NAME") how many connections completed a
# request sent after the mark, the longest wait for an answer since the mark, and the longest
# gap between a connection's last answer before the mark and its first one after. "report" prints
# a REPORT line: each connection's local port, real server, and gaps of over 1 s between answers
# as [start, end] in seconds since the epoch.
import asyncio
import json
import sys
import threading
import time

VIP, PORT, COUNT, INTERVAL = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
SOURCE = sys.argv[5] if len(sys.argv) > 5 else None

conns = {}
marks = {}


def note_answer(i, sent, now):
    for mark in marks.values():
        if sent >= mark['at']:
            mark['done'].add(i)
        if now >= mark['at']:
            mark['longest'] = max(mark['longest'], now - sent)
            # The stall: from the last answer before the mark to the first one after it.
            before = mark['last'].pop(i, None)
            if before is not None:
                mark['gap'] = max(mark['gap'], now - before)
    previous = conns[i]['last']
    if previous is not None and now - previous > 1.0:
        # Gaps between answers longer than a second, in wall-clock time (the test's clock).
        conns[i]['gaps'].append([round(time.time() - (now - previous), 3), round(time.time(), 3)])
    conns[i]['last'] = now


async def connection(i):
    state = {'server': None, 'answers': 0, 'lost': None, 'moved': 0, 'port': None, 'last': None, 'gaps': []}
    conns[i] = state
    try:
        reader, writer = await asyncio.open_connection(VIP, PORT, local_addr=(SOURCE, 0) if SOURCE else None)
        state['port'] = writer.get_extra_info('sockname')[1]
        seq = 0
        while True:
            sent = time.monotonic()
            writer.write(f'{i} {seq}\n'.encode())
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise ConnectionError('closed by the peer')
            now = time.monotonic()
            server = line.split(b' ', 1)[0].decode()
            if state['server'] is None:
                state['server'] = server
            elif server != state['server']:
                state['moved'] += 1
            state['answers'] += 1
            note_answer(i, sent, now)
            seq += 1
            await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - sent)))
    except Exception as error:  # noqa: BLE001 - every failure is a lost connection
        state['lost'] = repr(error)


def status():
    servers = {}
    for c in conns.values():
        if c['server']:
            servers[c['server']] = servers.get(c['server'], 0) + 1
    return {
        'connected': sum(1 for c in conns.values() if c['answers'] > 0),
        'open': sum(1 for c in conns.values() if c['lost'] is None),
        'lost': {i: c['lost'] for i, c in conns.items() if c['lost'] is not None},
        'moved': sum(c['moved'] for c in conns.values()),
        'servers': servers,
        'marks': {
            name: {'done': len(m['done']), 'longest': round(m['longest'], 3), 'gap': round(m['gap'], 3)}
            for name, m in marks.items()
        },
    }


async def main():
    loop = asyncio.get_running_loop()

    def command(line):
        parts = line.split()
        if len(parts) == 2 and parts[0] == 'mark':
            last = {i: c['last'] for i, c in conns.items() if c['last'] is not None}
            marks[parts[1]] = {'at': time.monotonic(), 'done': set(), 'longest': 0.0, 'gap': 0.0, 'last': last}
        elif parts == ['report']:
            report = {i: {'port': c['port'], 'server': c['server'], 'gaps': c['gaps']} for i, c in conns.items()}
            print('REPORT ' + json.dumps(report), flush=True)

    def read_stdin():
        for line in sys.stdin:
            loop.call_soon_threadsafe(command, line)

    threading.Thread(target=read_stdin, daemon=True).start()
    tasks = []
    for i in range(COUNT):
        tasks.append(asyncio.create_task(connection(i)))
        if i % 10 == 9:
            await asyncio.sleep(0.05)
    while True:
        print('STATUS ' + json.dumps(status()), flush=True)
        await asyncio.sleep(0.5)

asyncio.run(main())
