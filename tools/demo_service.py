"""An eventlet-patched oslo.messaging service, for ``make demo``.

Usage: demo_service.py URL true|false THRESHOLD STALL

Writes a real service config file with ``[oslo_messaging_rabbit]
heartbeat_in_pthread`` set as asked, makes an RPC call and a notification
round trip on the rabbit driver, then blocks its main OS thread without
yielding to the eventlet hub for STALL seconds (as a WSGI worker between
requests) while it watches the publisher's socket for the broker closing
it, then times the next RPC call.  Prints one ``RESULT {json}`` line.
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402

native_select = eventlet.patcher.original('select')
native_threading = eventlet.patcher.original('threading')


class Endpoint:
    def __init__(self):
        self.notifications = []

    def echo(self, ctxt, text):
        return text

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.notifications.append(payload)


class CountReconnects(logging.Handler):
    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record):
        if 'Reconnected to AMQP server' in record.getMessage():
            self.count += 1


def watch_for_close(sock, seconds):
    """Block this OS thread for seconds; when did the peer close sock?"""
    poller = native_select.poll()
    poller.register(sock.fileno(), native_select.POLLRDHUP)
    start = time.monotonic()
    while True:
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            return None
        if poller.poll(left * 1000):
            closed_at = time.monotonic() - start
            eventlet.patcher.original('time').sleep(max(0, left))
            return closed_at


def main():
    url, mode, threshold, stall = sys.argv[1], sys.argv[2], \
        int(sys.argv[3]), float(sys.argv[4])
    path = os.path.join(tempfile.mkdtemp(), 'service.conf')
    with open(path, 'w') as f:
        f.write('[DEFAULT]\ntransport_url = %s\n\n'
                '[oslo_messaging_rabbit]\nheartbeat_in_pthread = %s\n'
                'heartbeat_timeout_threshold = %d\nheartbeat_rate = 2\n'
                % (url, mode, threshold))
    # NOTE: the global CONF, as services use: in 18.3.1 an RPC call built
    # on a private ConfigOpts fails (the [oslo_messaging_tracing] options
    # are only registered on cfg.CONF).
    conf = cfg.CONF
    conf(['--config-file', path])
    reconnects = CountReconnects()
    logging.getLogger().addHandler(reconnects)
    logging.getLogger().setLevel(logging.INFO)

    transport = oslo_messaging.get_rpc_transport(conf)
    endpoint = Endpoint()
    target = oslo_messaging.Target(topic='demo', server='demo-server')
    server = oslo_messaging.get_rpc_server(transport, target, [endpoint],
                                           executor='eventlet')
    server.start()
    ntransport = oslo_messaging.get_notification_transport(conf)
    listener = oslo_messaging.get_notification_listener(
        ntransport, [oslo_messaging.Target(topic='demo-notifications')],
        [endpoint], executor='eventlet')
    listener.start()
    client = oslo_messaging.get_rpc_client(transport, target, timeout=30)
    notifier = oslo_messaging.Notifier(ntransport, 'demo', driver='messaging',
                                       topics=['demo-notifications'])

    answer = client.call({}, 'echo', text='hello')
    notifier.info({}, 'demo.event', {'n': 1})
    while not endpoint.notifications:
        eventlet.sleep(0.05)

    conn = ntransport._driver._connection_pool._items[0][1]
    sock = conn.connection._connection.transport.sock
    port = sock.getsockname()[1]
    native = [t.name for t in native_threading.enumerate()
              if t.name == 'Rabbit-heartbeat (native)']
    kind = 'native OS thread' if native else 'greenthread'
    print('heartbeat_in_pthread = %s: call -> %r, notification -> %r; '
          'negotiated heartbeat %s s, heartbeat runs in a %s'
          % (mode, answer, endpoint.notifications[0],
             conn.connection._connection.heartbeat, kind), flush=True)

    reconnects.count = 0
    dropped_after = watch_for_close(sock, stall)
    # What users feel: the first RPC call after the stall, timed.
    called = time.monotonic()
    try:
        after = client.call({}, 'echo', text='again')
        call_ok = True
    except oslo_messaging.MessagingException as exc:
        after = 'failed: %s' % exc.__class__.__name__
        call_ok = False
    call_latency = time.monotonic() - called
    notifier.info({}, 'demo.event', {'n': 2})
    new_port = conn.connection._connection.transport.sock.getsockname()[1]
    result = {'heartbeat_in_pthread': mode, 'thread': kind,
              'kept': new_port == port and dropped_after is None,
              'dropped_after': dropped_after,
              'reconnects': reconnects.count, 'call_after': after,
              'call_ok': call_ok, 'call_latency': call_latency}
    server.stop()
    listener.stop()
    server.wait()
    listener.wait()
    transport.cleanup()
    ntransport.cleanup()
    print('RESULT ' + json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
