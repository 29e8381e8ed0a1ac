"""Microbenchmarks of the wire path of heartbeat_in_pthread.

Runs in the fork's virtualenv (bench-fork), eventlet-patched as services
are, on the real classes: py-amqp's TCPTransport and SSLTransport
connected to a peer of ours on loopback ("plain", what the driver uses
with the option off), and amqp_fork's owned transports with an
``amqp_wire.Wire`` attached ("wire", what the driver uses for every
connection when the option is on), and impl_rabbit Connections to a
broker with the option off and on.  Cases, each in variants "plain" and "wire"; an
operation is:

tcp-write   TCPTransport.write() of a message's frames (method, header,
            body: one write, as py-amqp's frame writer makes it);
            "wire": through Wire._write.
tls-write   the same over TLS (SSLTransport._write, wrapped or not).
tls-read    one SSLTransport._quick_recv() call, as read_frame() makes
            them (three per frame: header, payload, frame end) on frames
            already received: eventlet's GreenSSLSocket.read, or
            Wire._tls_read.
ensure      impl_rabbit Connection.ensure() of a method doing nothing,
            option off ("plain") or on ("wire"): what the option adds to
            every ensure() (the wire's hand-over), no socket traffic.
            Needs --url.

The peer writes or drains between timed blocks of operations, never
during them, so that an operation never waits for the peer.

    python wirebench.py --certs DIR [--url URL] [--cases a,b]
                        [--seconds S] [--pyperf-json FILE]
        for each case, pairs of blocks (plain then wire, or wire then
        plain, in turn) for S seconds; prints ``RESULT {json}``, per
        case: medians of the per-operation times and of the per-pair
        differences (benchstats.paired_summary); adds the blocks to FILE
        (pyperf's format: python -m pyperf stats FILE).  Times are the
        CPU time of the thread (time.thread_time).
    valgrind --tool=callgrind --dump-before=getppid \\
        python wirebench.py --callgrind REPEATS --certs DIR ...
        for each case and variant, blocks of N and 2N operations, each
        between two os.getppid() calls (callgrind dumps its counters
        before each): after CALLGRIND_WARMUP rounds, REPEATS of each
        size; prints ``PARTS [...]``, the label of each part callgrind
        dumps, in order ([case, variant, operations], or null: not a
        block).
"""

import sys
import warnings

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
# Like the services measured: patched before anything else is imported.
import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

import amqp  # noqa: E402
from amqp import transport as amqp_transport  # noqa: E402

from oslo_messaging._drivers import amqp_fork  # noqa: E402
from oslo_messaging._drivers import amqp_wire  # noqa: E402

import benchstats  # noqa: E402

CASES = ('tcp-write', 'tls-write', 'tls-read', 'ensure')
VARIANTS = ('plain', 'wire')
HEARTBEAT = 60        # negotiated heartbeat of the benchmark connections
RATE = 3              # heartbeat_rate: the driver's default
CALLGRIND_WARMUP = 3  # rounds of blocks before those counted
# CPU time of this thread: what the operations cost it, without the time
# other processes of the busy machine run on its core meanwhile.
CLOCK = time.thread_time
BUFFER = 1 << 20      # socket buffers: a block never fills them


def frame(ftype, size, channel=1):
    return struct.pack('>BHI', ftype, channel, size) + b'x' * size + b'\xce'


# A small RPC message as py-amqp writes it (basic.publish, content header,
# body) and as the broker delivers one (basic.deliver, header, body).
PUBLISH = frame(1, 40) + frame(2, 120) + frame(3, 420)
DELIVER = frame(1, 80) + frame(2, 150) + frame(3, 420)
FRAMES_PER_DELIVER = 3


def read_exactly(sock, size):
    data = b''
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            raise OSError('peer closed the benchmark socket')
        data += more
    return data


def listener():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
    sock.bind(('127.0.0.1', 0))
    sock.listen(1)
    return sock


def amqp_connection(transport):
    """A py-amqp Connection owning transport, as after the broker's tune."""
    host, port = transport.sock.getpeername()[:2]
    conn = amqp.Connection('%s:%d' % (host, port), heartbeat=HEARTBEAT)
    conn.heartbeat = HEARTBEAT  # what connection.tune negotiates
    conn._transport = transport
    return conn


def attach_wire(transport):
    conn = amqp_connection(transport)
    problem = amqp_wire.layout_problem(conn, transport)
    if problem:
        sys.exit('wirebench: the wire cannot be attached: %s' % problem)
    # Not registered with the native heartbeat thread: a heartbeat every
    # tick (tens of seconds) adds nothing measurable per operation.
    return amqp_wire.Wire(conn, transport, RATE)


class Stream:
    """A transport connected to a peer of ours over loopback TCP or TLS."""

    def __init__(self, tls, certs, wire):
        lsock = listener()
        address = '127.0.0.1:%d' % lsock.getsockname()[1]
        classes = amqp_fork if wire else amqp_transport
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(os.path.join(certs, 'cert.pem'),
                                    os.path.join(certs, 'key.pem'))
            accept = eventlet.spawn(self._accept_tls, lsock, context)
            self.transport = classes.SSLTransport(
                address, connect_timeout=10,
                ssl={'cert_reqs': ssl.CERT_NONE})
        else:
            accept = eventlet.spawn(self._accept, lsock)
            self.transport = classes.TCPTransport(address,
                                                  connect_timeout=10)
        self.transport.connect()  # TLS: handshakes with the greenthread
        self.transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                       BUFFER)
        self.peer = accept.wait()
        lsock.close()
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)
        self.peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wire = attach_wire(self.transport) if wire else None
        self.buffer = bytearray(65536)

    @staticmethod
    def _accept(lsock):
        peer, _ = lsock.accept()
        read_exactly(peer, 8)  # AMQP protocol header
        return peer

    @staticmethod
    def _accept_tls(lsock, context):
        peer, _ = lsock.accept()
        peer = context.wrap_socket(peer, server_side=True)
        read_exactly(peer, 8)
        return peer

    def drain(self, size):
        while size > 0:
            got = self.peer.recv_into(self.buffer)
            if not got:
                raise OSError('benchmark connection closed')
            size -= got


class Writes:
    """transport.write(PUBLISH): TCP or TLS, plain or through the wire."""

    block = 32  # operations timed at a time (a few hundred us)

    def __init__(self, tls, certs, wire, url):
        self.stream = Stream(tls, certs, wire)
        self.write = self.stream.transport.write

    def prepare(self, n):
        pass

    def run(self, n):
        write, data = self.write, PUBLISH
        for _ in range(n):
            write(data)

    def finish(self, n):
        self.stream.drain(n * len(PUBLISH))


class TlsReads:
    """SSLTransport._quick_recv calls, as read_frame() makes them.

    An operation is one _quick_recv call: read_frame() makes three per
    frame (header, payload, frame end) of frames already received.
    """

    reads_per_message = 3 * FRAMES_PER_DELIVER
    block = 8 * reads_per_message

    def __init__(self, tls, certs, wire, url):
        self.stream = Stream(True, certs, wire)
        self.read_frame = self.stream.transport.read_frame

    def prepare(self, n):
        if n % self.reads_per_message:
            raise ValueError('tls-read runs whole messages, not %d reads' % n)
        # One TLS record in one TCP segment: loopback delivers it during
        # sendall, so the frames are all in the client's receive queue and
        # no read below waits.
        self.stream.peer.sendall(DELIVER * (n // self.reads_per_message))

    def run(self, n):
        read_frame = self.read_frame
        for _ in range(n // 3):
            read_frame()

    def finish(self, n):
        pass


class Ensures:
    """Connection.ensure(no-op) with the option off or on."""

    block = 16

    def __init__(self, tls, certs, wire, url):
        if not url:
            sys.exit('wirebench: the ensure case needs --url')
        from oslo_config import cfg
        import oslo_messaging
        from oslo_messaging._drivers import common as driver_common
        from oslo_messaging._drivers import impl_rabbit
        conf = cfg.CONF
        if not _made_conf:
            conf([], project='wirebench')
            # The first transport registers the driver's options.
            oslo_messaging.get_rpc_transport(conf, url=url).cleanup()
            _made_conf.append(conf)
        conf.set_override('heartbeat_in_pthread', wire,
                          group='oslo_messaging_rabbit')
        transport = oslo_messaging.get_rpc_transport(conf, url=url)
        self.conn = impl_rabbit.Connection(conf, transport._driver._url,
                                           driver_common.PURPOSE_SEND)
        if (self.conn._wire is not None) != wire:
            sys.exit('wirebench: option %s but the connection %s a wire'
                     % ('on' if wire else 'off',
                        'has no' if wire else 'has'))
        self.conn.ensure(self.noop)  # opens the channel

    @staticmethod
    def noop():
        pass

    def prepare(self, n):
        pass

    def run(self, n):
        ensure, noop = self.conn.ensure, self.noop
        for _ in range(n):
            ensure(noop)

    def finish(self, n):
        pass


_made_conf = []
FIXTURES = {'tcp-write': (Writes, False), 'tls-write': (Writes, True),
            'tls-read': (TlsReads, True), 'ensure': (Ensures, None)}


def fixtures(case, args):
    klass, tls = FIXTURES[case]
    return {variant: klass(tls, args.certs, variant == 'wire', args.url)
            for variant in VARIANTS}


def timed(fix, n):
    """Seconds per operation of n operations (the peer acts outside)."""
    fix.prepare(n)
    start = CLOCK()
    fix.run(n)
    elapsed = CLOCK() - start
    fix.finish(n)
    return elapsed / n


def worker(args):
    """Pairs of blocks, plain and wire back to back, for each case."""
    results = {}
    suite = []
    for case in args.cases:
        fix = fixtures(case, args)
        block = fix['plain'].block
        for index in range(args.warmup):
            for variant in VARIANTS:
                timed(fix[variant], block)
        pairs = []
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline or not pairs:
            # Alternate which runs first: neither gets the warmer cache.
            order = VARIANTS if len(pairs) % 2 == 0 else VARIANTS[::-1]
            times = {variant: timed(fix[variant], block)
                     for variant in order}
            pairs.append((times['plain'], times['wire']))
        results[case] = dict(benchstats.paired_summary(pairs), block=block)
        suite.append((case, block, pairs))
    if args.pyperf_json:
        save_pyperf(args.pyperf_json, suite)
    print('RESULT %s' % json.dumps(results), flush=True)


def save_pyperf(path, suite):
    """Add this process's blocks to a pyperf JSON file, one run each."""
    import pyperf
    benchmarks = []
    for case, block, pairs in suite:
        for index, variant in enumerate(VARIANTS):
            run = pyperf.Run([pair[index] for pair in pairs], metadata={
                'name': '%s/%s' % (case, variant), 'loops': block,
                'unit': 'second', 'description': DESCRIPTIONS[case]})
            benchmarks.append(pyperf.Benchmark([run]))
    pyperf.add_runs(path, pyperf.BenchmarkSuite(benchmarks))


DESCRIPTIONS = {
    'tcp-write': 'TCPTransport.write() of a message (3 frames)',
    'tls-write': 'SSLTransport.write() of a message (3 frames)',
    'tls-read': 'one SSLTransport._quick_recv() call of read_frame()',
    'ensure': 'impl_rabbit Connection.ensure() of a no-op'}


def callgrind(args):
    """Blocks of N and 2N operations between os.getppid() markers."""
    parts = [None]  # from the start to the first marker
    for case in args.cases:
        fix = fixtures(case, args)
        n = fix['plain'].block // 2
        for variant in VARIANTS:
            for repeat in range(-CALLGRIND_WARMUP, args.callgrind):
                for size in (n, 2 * n):
                    fix[variant].prepare(size)
                    gc.collect()
                    gc.disable()  # a collection would land in one block
                    os.getppid()
                    fix[variant].run(size)
                    os.getppid()
                    gc.enable()
                    fix[variant].finish(size)
                    parts += [[case, variant, size] if repeat >= 0 else None,
                              None]
    print('PARTS %s' % json.dumps(parts), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--certs', required=True,
                        help='directory with cert.pem and key.pem')
    parser.add_argument('--url', help='broker URL (ensure case)')
    parser.add_argument('--cases', default=','.join(CASES),
                        type=lambda s: [c for c in s.split(',') if c])
    parser.add_argument('--seconds', type=float, default=2.0,
                        help='worker: seconds of pairs per case')
    parser.add_argument('--warmup', type=int, default=20,
                        help='worker: pairs run before the timed ones')
    parser.add_argument('--pyperf-json',
                        help='worker: add the blocks to this pyperf file')
    parser.add_argument('--callgrind', type=int, metavar='REPEATS',
                        help='blocks for callgrind instead, each size '
                        'REPEATS times after a warm-up')
    args = parser.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        sys.exit('wirebench: unknown case(s) %s (known: %s)'
                 % (', '.join(unknown), ', '.join(CASES)))
    if args.callgrind:
        callgrind(args)
    else:
        worker(args)
    sys.stdout.flush()
    os._exit(0)  # leave the connections and the native thread as they are


if __name__ == '__main__':
    main()
