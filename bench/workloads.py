"""Benchmark workloads, run inside a virtualenv holding one oslo.messaging.

Usage: python workloads.py WORKLOAD URL OPTION [ARGS...]

OPTION is on, off or "-" (leave heartbeat_in_pthread alone: pristine
18.3.1 does not have it).  Each workload prints one ``RESULT {json}``
line.  Only what every variant has is used: transports, impl_rabbit
Connection objects, the option and kombu/py-amqp's own attributes; the
heartbeat threads are counted as OS threads, never looked up.

conns COUNT IDLE STALL THRESHOLD GO_FILE (eventlet-patched)
    opens COUNT connections (heartbeat_timeout_threshold THRESHOLD),
    prints READY and waits, hub running, for GO_FILE to exist; then idles
    IDLE seconds with the hub running (CPU, wake-ups), blocks the main OS
    thread STALL seconds without yielding, and closes everything.
rpc-server EXECUTOR TOPIC
    serves ``echo`` and ``cpu`` (the server's CPU seconds), prints READY
    and runs until killed.
rpc-client EXECUTOR TOPIC
    prints READY, then for each line T read on stdin (until an empty
    one) makes calls for T seconds, timing each, and reports the CPU
    each process spent on them.  The timed calls lie between two
    os.getppid() calls in the client, and between the server's two
    ``cpu`` calls, which call os.getppid() too: markers for callgrind.
Processes of the eventlet executor and of conns call
eventlet.monkey_patch() first, as services do.
"""

import sys

WORKLOAD, URL, OPTION = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
EVENTLET = WORKLOAD == 'conns' or ARGS[0] == 'eventlet'
if EVENTLET:
    import eventlet
    eventlet.monkey_patch()

import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_messaging._drivers import common as driver_common  # noqa: E402
from oslo_messaging._drivers import impl_rabbit  # noqa: E402

import benchstats  # noqa: E402

GROUP = 'oslo_messaging_rabbit'


def transport(**overrides):
    conf = cfg.CONF
    conf([], project='bench')
    # The first transport registers the driver's options.
    oslo_messaging.get_rpc_transport(conf, url=URL).cleanup()
    if OPTION != '-':
        conf.set_override('heartbeat_in_pthread', OPTION == 'on',
                          group=GROUP)
    for name, value in overrides.items():
        conf.set_override(name, value, group=GROUP)
    return oslo_messaging.get_rpc_transport(conf, url=URL)


def green_sleep(seconds):
    if EVENTLET:
        eventlet.sleep(seconds)
    else:
        time.sleep(seconds)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads
    return usage.ru_utime + usage.ru_stime


def os_threads():
    return len(os.listdir('/proc/self/task'))


def wakeups():
    """Context switches of every thread of this process so far."""
    total = 0
    for path in glob.glob('/proc/self/task/*/status'):
        try:
            with open(path) as f:
                total += benchstats.ctxt_switches(f.read())
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return total


def rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0


def conns(count, idle_s, stall_s, threshold, go_file):
    count, idle_s, stall_s = int(count), float(idle_s), float(stall_s)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    trans = transport(heartbeat_timeout_threshold=int(threshold))
    baseline = os_threads()
    start = time.perf_counter()
    connections = [impl_rabbit.Connection(cfg.CONF, trans._driver._url,
                                          driver_common.PURPOSE_SEND)
                   for _ in range(count)]
    open_s = time.perf_counter() - start
    amqp = [c.connection.connection for c in connections]  # py-amqp's
    ports = [a.sock.getsockname()[1] for a in amqp]
    print('READY', flush=True)
    while not os.path.exists(go_file):
        eventlet.sleep(0.1)
    eventlet.sleep(1)
    threads, rss = os_threads(), rss_mib()
    cpu0, wake0, t0 = cpu_seconds(), wakeups(), time.monotonic()
    eventlet.sleep(idle_s)  # the hub runs: an idle, healthy service
    cpu1, wake1, t1 = cpu_seconds(), wakeups(), time.monotonic()
    stall_start = time.monotonic()
    eventlet.patcher.original('time').sleep(stall_s)  # no yield
    stall_end = time.monotonic()
    eventlet.sleep(1)
    start = time.perf_counter()
    for conn in connections:
        conn.close()
    trans.cleanup()
    close_s = time.perf_counter() - start
    left_at_once = os_threads() - baseline
    eventlet.sleep(1)
    per_minute = 60.0 / (t1 - t0)
    return {'open_s': open_s, 'baseline_threads': baseline,
            'os_threads': threads, 'rss_mib': rss,
            'cpu_s_per_min': (cpu1 - cpu0) * per_minute,
            'wakeups_per_min': (wake1 - wake0) * per_minute,
            'tick_s': benchstats.tick(
                threshold, cfg.CONF.oslo_messaging_rabbit.heartbeat_rate),
            'negotiated_s': amqp[0].heartbeat, 'ports': ports,
            'stall_start': stall_start, 'stall_end': stall_end,
            'close_s': close_s, 'threads_left_at_once': left_at_once,
            'threads_left_after_1s': os_threads() - baseline}


class Echo:
    def echo(self, ctxt, n):
        return n

    def cpu(self, ctxt):
        os.getppid()  # a marker for callgrind (overhead.py)
        return cpu_seconds()


def rpc_server(executor, topic):
    trans = transport()
    target = oslo_messaging.Target(topic=topic, server='bench')
    server = oslo_messaging.get_rpc_server(trans, target, [Echo()],
                                           executor=executor)
    server.start()
    print('READY', flush=True)
    while True:
        green_sleep(3600)  # killed by run.py


def read_command():
    if EVENTLET:  # wait with the hub running
        eventlet.hubs.trampoline(sys.stdin.fileno(), read=True)
    return sys.stdin.readline().strip()


def rpc_client(executor, topic):
    trans = transport()
    target = oslo_messaging.Target(topic=topic, server='bench')
    client = oslo_messaging.get_rpc_client(trans, target, timeout=30)
    print('READY', flush=True)
    while True:
        seconds = read_command()
        if not seconds:
            return
        server0 = client.call({}, 'cpu')
        os.getppid()  # a marker for callgrind (overhead.py)
        cpu0 = cpu_seconds()
        latencies = []
        start = t1 = time.perf_counter()
        end = start + float(seconds)
        while t1 < end:
            t0 = t1
            client.call({}, 'echo', n=len(latencies))
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
        elapsed = t1 - start
        cpu1 = cpu_seconds()
        os.getppid()
        server1 = client.call({}, 'cpu')
        latencies.sort()
        n = len(latencies)
        print('RESULT ' + json.dumps({
            'calls': n, 'calls_per_s': n / elapsed,
            'p50_ms': 1000 * latencies[n // 2],
            'p99_ms': 1000 * latencies[int(n * 0.99)],
            'client_cpu_us': 1e6 * (cpu1 - cpu0) / n,
            'server_cpu_us': 1e6 * (server1 - server0) / n}), flush=True)


def main():
    func = {'conns': conns, 'rpc-server': rpc_server,
            'rpc-client': rpc_client}[WORKLOAD]
    result = func(*ARGS)
    if result is not None:
        print('RESULT ' + json.dumps(result), flush=True)
    os._exit(0)  # do not wait for greenthreads of the pristine driver


if __name__ == '__main__':
    main()
