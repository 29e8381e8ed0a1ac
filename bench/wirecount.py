"""What one RPC call passes through the wire path, connection by connection.

Runs in the fork's virtualenv, eventlet-patched, heartbeat_in_pthread on,
against a broker (TCP or TLS).  Every amqp_wire.Wire made in the process
gets counters on its transport: writes (Wire._write) and the frames and
bytes they carry, frames read (read_frame), and over TLS the
_quick_recv calls (Wire._tls_read) and the SSL_read attempts they make
under the wire lock (more than the calls when a read finds no data and
waits); every impl_rabbit Connection counts its ensure() calls.  Counts
are reported per connection role: the client's publisher and reply
listener, the server's listener and reply publisher.

    python wirecount.py server URL TOPIC [CA_FILE]
        serves ``echo``; prints READY, then for each line "snap" on stdin
        prints ``RESULT {role: counts}``; runs until killed.
    python wirecount.py client URL TOPIC [CA_FILE]
        makes warm-up calls, prints READY, then for each line N on stdin
        makes N calls and prints ``RESULT {"counts": {role: counts},
        "seconds_per_call": s}`` (the counts of those calls only).

CA_FILE: the broker's certificate for a TLS URL (verified, as a service
would).
"""

import sys
import warnings

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
import eventlet  # noqa: E402

eventlet.monkey_patch()

import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_messaging._drivers import amqp_wire  # noqa: E402
from oslo_messaging._drivers import common as driver_common  # noqa: E402
from oslo_messaging._drivers import impl_rabbit  # noqa: E402

import benchstats  # noqa: E402

GROUP = 'oslo_messaging_rabbit'
WARMUP_CALLS = 20
CONNECTIONS = []


def counting(counter, key, func, frames=None):
    def counted(*args, **kwargs):
        counter[key] += 1
        if frames:
            counter[frames] += benchstats.count_frames(args[0])
            counter['bytes_written'] += len(args[0])
        return func(*args, **kwargs)
    return counted


def instrument():
    """Count, from now on, what goes through every wire and ensure()."""
    make_wire = amqp_wire.Wire.__init__
    make_connection = impl_rabbit.Connection.__init__
    ensure = impl_rabbit.Connection.ensure

    def wire_init(wire, amqp_conn, transport, rate):
        make_wire(wire, amqp_conn, transport, rate)
        wire.counts = counts = collections.Counter()
        # What the wire installed on the transport, counted.
        transport._write = counting(counts, 'writes', transport._write,
                                    frames='frames_written')
        read_frame = transport.read_frame

        def counted_read_frame(*args, **kwargs):
            frame = read_frame(*args, **kwargs)
            counts['frames_read'] += 1
            return frame
        transport.read_frame = counted_read_frame
        if wire.tls:
            transport._quick_recv = counting(counts, 'tls_reads',
                                             transport._quick_recv)
            wire._ssl_read = counting(counts, 'ssl_read_attempts',
                                      wire._ssl_read)

    def connection_init(conn, *args, **kwargs):
        conn.ensure_calls = 0
        make_connection(conn, *args, **kwargs)
        CONNECTIONS.append(conn)

    def counted_ensure(conn, *args, **kwargs):
        conn.ensure_calls += 1
        return ensure(conn, *args, **kwargs)

    amqp_wire.Wire.__init__ = wire_init
    impl_rabbit.Connection.__init__ = connection_init
    impl_rabbit.Connection.ensure = counted_ensure


def snapshot(side):
    """Counts so far by role: {role: {name: count}}."""
    roles = {}
    for conn in CONNECTIONS:
        if conn.purpose == driver_common.PURPOSE_SEND:
            role = 'publisher' if side == 'client' else 'reply publisher'
        else:
            role = 'reply listener' if side == 'client' else 'listener'
        counts = roles.setdefault('%s %s' % (side, role),
                                  collections.Counter())
        counts['connections'] += 1
        counts['ensure'] += conn.ensure_calls
        wire = conn._wire
        if conn._heartbeat_in_pthread and wire is None:
            sys.exit('wirecount: a connection with the option on has no '
                     'wire')
        if wire is not None:
            counts.update(wire.counts)
    return {role: dict(counts) for role, counts in roles.items()}


def transport(url, ca_file):
    conf = cfg.CONF
    conf([], project='wirecount')
    oslo_messaging.get_rpc_transport(conf, url=url).cleanup()
    conf.set_override('heartbeat_in_pthread', True, group=GROUP)
    if ca_file:
        conf.set_override('ssl', True, group=GROUP)
        conf.set_override('ssl_ca_file', ca_file, group=GROUP)
    return oslo_messaging.get_rpc_transport(conf, url=url)


def read_command():
    eventlet.hubs.trampoline(sys.stdin.fileno(), read=True)
    return sys.stdin.readline().strip()


class Echo:
    def echo(self, ctxt, n):
        return n


def server(url, topic, ca_file=None):
    trans = transport(url, ca_file)
    target = oslo_messaging.Target(topic=topic, server='bench')
    rpc_server = oslo_messaging.get_rpc_server(trans, target, [Echo()],
                                               executor='eventlet')
    rpc_server.start()
    print('READY', flush=True)
    while read_command() == 'snap':
        print('RESULT %s' % json.dumps(snapshot('server')), flush=True)


def client(url, topic, ca_file=None):
    trans = transport(url, ca_file)
    target = oslo_messaging.Target(topic=topic, server='bench')
    rpc_client = oslo_messaging.get_rpc_client(trans, target, timeout=30)
    for n in range(WARMUP_CALLS):  # reply queue, declarations
        rpc_client.call({}, 'echo', n=n)
    print('READY', flush=True)
    while True:
        command = read_command()
        if not command:
            return
        calls = int(command)
        before = snapshot('client')
        start = time.perf_counter()
        for n in range(calls):
            rpc_client.call({}, 'echo', n=n)
        elapsed = time.perf_counter() - start
        after = snapshot('client')
        print('RESULT %s' % json.dumps({
            'counts': benchstats.difference(after, before),
            'seconds_per_call': elapsed / calls}), flush=True)


def main():
    instrument()
    role, args = sys.argv[1], sys.argv[2:]
    {'server': server, 'client': client}[role](*args)
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()
