"""Benchmark workloads, run inside a virtualenv holding one oslo.messaging.

Usage: python workloads.py WORKLOAD URL OPTION [ARGS...]

WORKLOAD is stall, rpc, idle or shutdown; OPTION is on, off or "-" (leave
heartbeat_in_pthread alone: pristine 18.3.1 does not have it).  Prints one
``RESULT {json}`` line.  Processes of the eventlet variants call
eventlet.monkey_patch() first, as services do.
"""

import sys

WORKLOAD, URL, OPTION = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = sys.argv[4:]
EVENTLET = not (WORKLOAD == 'rpc' and ARGS[0] == 'threading')
if EVENTLET:
    import eventlet
    eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

from oslo_config import cfg  # noqa: E402
import oslo_messaging  # noqa: E402
from oslo_messaging._drivers import common as driver_common  # noqa: E402

GROUP = 'oslo_messaging_rabbit'


def transport(**overrides):
    conf = cfg.CONF
    conf([], project='bench')
    # The first transport registers the driver's options; the pool size
    # is read when a transport is made, so make the one we use after.
    oslo_messaging.get_rpc_transport(conf, url=URL).cleanup()
    if OPTION != '-':
        conf.set_override('heartbeat_in_pthread', OPTION == 'on',
                          group=GROUP)
    for name, value in overrides.items():
        conf.set_override(name, value, group=GROUP)
    return oslo_messaging.get_rpc_transport(conf, url=URL)


def blocking_sleep(seconds):
    if EVENTLET:
        eventlet.patcher.original('time').sleep(seconds)
    else:
        time.sleep(seconds)


def stall(seconds):
    """Connect, publish once, block the main OS thread without yielding."""
    trans = transport()
    notifier = oslo_messaging.Notifier(trans, 'bench', driver='messaging',
                                       topics=['bench'])
    notifier.info({}, 'bench.before', {})
    start = time.monotonic()
    blocking_sleep(float(seconds))
    end = time.monotonic()
    heartbeat = trans._driver._connection_pool._items[0][1].connection
    negotiated = heartbeat._connection.heartbeat
    return {'stall_start': start, 'stall_end': end, 'negotiated': negotiated,
            'clock': 'monotonic'}


class Echo:
    def echo(self, ctxt, n):
        return n


def rpc(executor, calls):
    trans = transport()
    target = oslo_messaging.Target(topic='bench-rpc-%d' % os.getpid(),
                                   server='bench')
    server = oslo_messaging.get_rpc_server(trans, target, [Echo()],
                                           executor=executor)
    server.start()
    client = oslo_messaging.get_rpc_client(trans, target, timeout=30)
    for n in range(50):  # warm up
        client.call({}, 'echo', n=n)
    latencies = []
    start = time.perf_counter()
    for n in range(int(calls)):
        t0 = time.perf_counter()
        client.call({}, 'echo', n=n)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    server.stop()
    server.wait()
    trans.cleanup()
    latencies.sort()
    return {'calls_per_s': len(latencies) / elapsed,
            'p50_ms': 1000 * latencies[len(latencies) // 2],
            'p99_ms': 1000 * latencies[int(len(latencies) * 0.99)]}


def proc_status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])


def connections(count):
    from oslo_messaging._drivers import impl_rabbit
    trans = transport(rpc_conn_pool_size=max(30, count))
    conns = [impl_rabbit.Connection(cfg.CONF, trans._driver._url,
                                    driver_common.PURPOSE_SEND)
             for _ in range(count)]
    return trans, conns


def idle(count, seconds):
    count, seconds = int(count), float(seconds)
    trans, conns = connections(count)
    eventlet.sleep(1)
    before = resource.getrusage(resource.RUSAGE_SELF)
    eventlet.sleep(seconds)  # the hub runs: an idle, healthy service
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime +
                                               before.ru_stime)
    wakeups = (after.ru_nvcsw + after.ru_nivcsw) - (before.ru_nvcsw +
                                                    before.ru_nivcsw)
    per_minute = 60.0 / seconds / count
    result = {'cpu_s_per_conn_min': cpu * per_minute,
              'wakeups_per_conn_min': wakeups * per_minute,
              'rss_mib': proc_status('VmRSS') / 1024.0,
              'os_threads': proc_status('Threads')}
    for conn in conns:
        conn.close()
    trans.cleanup()
    return result


def shutdown(count):
    count = int(count)
    trans = transport(rpc_conn_pool_size=max(30, count))
    contexts = [trans._driver._get_connection(driver_common.PURPOSE_SEND)
                for _ in range(count)]
    for ctx in contexts:
        ctx.close()  # back into the pool
    start = time.perf_counter()
    trans.cleanup()
    return {'cleanup_s': time.perf_counter() - start,
            'os_threads_after': proc_status('Threads')}


def main():
    func = {'stall': stall, 'rpc': rpc, 'idle': idle,
            'shutdown': shutdown}[WORKLOAD]
    result = func(*ARGS)
    print('RESULT ' + json.dumps(result), flush=True)
    os._exit(0)  # do not wait for greenthreads of the pristine driver


if __name__ == '__main__':
    main()
