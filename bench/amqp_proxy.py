"""Timestamps of client-to-broker AMQP traffic, two ways.

AmqpProxy: a loopback TCP proxy that timestamps every client-to-broker
AMQP frame.  AMQP 0-9-1 framing: after the 8-byte protocol header, each
frame is type (1 byte), channel (2), payload size (4), payload, frame-end
0xCE.  Broker-to-client bytes are forwarded untouched.  Two Python threads
per connection: fine for a hundred connections, too slow for a thousand.

WireClock: the lighter method for many connections, a packet socket on
the loopback interface (root only) that timestamps every TCP segment
carrying data to the broker's port, by client port.  It does not parse
frames: a segment is counted as a frame (while the hub is stalled only
8-byte heartbeat frames are sent, one per segment).
"""

import collections
import socket
import struct
import threading
import time


class FrameClock:
    """Parses a byte stream into frames, recording when each one ended."""

    def __init__(self):
        self.buffer = b''
        self.header_seen = False
        self.frames = []  # (monotonic time, frame type)

    def feed(self, data, now):
        self.buffer += data
        if not self.header_seen:
            if len(self.buffer) < 8:
                return
            self.buffer = self.buffer[8:]
            self.header_seen = True
        while len(self.buffer) >= 7:
            ftype, _, size = struct.unpack('>BHI', self.buffer[:7])
            if len(self.buffer) < 8 + size:
                return
            if self.buffer[7 + size] != 0xCE:
                raise ValueError('frame end byte missing: corrupt stream')
            self.frames.append((now, ftype))
            self.buffer = self.buffer[8 + size:]

    def largest_gap(self, start, end):
        """Longest time in [start, end] without a complete client frame."""
        return largest_gap([t for t, _ in self.frames], start, end)


def largest_gap(times, start, end):
    """Longest time in [start, end] without one of the given times."""
    times = [start] + sorted(t for t in times if start < t < end) + [end]
    return max(b - a for a, b in zip(times, times[1:]))


class AmqpProxy:
    def __init__(self, broker_port):
        self.broker_port = broker_port
        self.clocks = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            broker = socket.create_connection(('127.0.0.1',
                                               self.broker_port))
            clock = FrameClock()
            self.clocks.append(clock)
            threading.Thread(target=self._pipe, args=(client, broker, clock),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(broker, client, None),
                             daemon=True).start()

    @staticmethod
    def _pipe(src, dst, clock):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if clock is not None:
                    clock.feed(data, time.monotonic())
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()


PACKET_OUTGOING = 4  # linux/if_packet.h: loopback shows each packet twice
ETH_P_IP = 0x0800


def tcp_data_segment(packet):
    """(source port, destination port, data bytes) of an IPv4/TCP packet.

    None for anything else.
    """
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return None
    ihl = (packet[0] & 0x0f) * 4
    total = struct.unpack('>H', packet[2:4])[0]
    tcp = packet[ihl:]
    if len(tcp) < 20:
        return None
    sport, dport = struct.unpack('>HH', tcp[:4])
    return sport, dport, total - ihl - (tcp[12] >> 4) * 4


class WireClock:
    """Times of TCP segments with data sent to broker_port, by client port."""

    def __init__(self, broker_port):
        self.broker_port = broker_port
        self.times = collections.defaultdict(list)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                  socket.htons(ETH_P_IP))
        self.sock.bind(('lo', ETH_P_IP))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                packet, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            now = time.monotonic()
            segment = tcp_data_segment(packet)
            if (addr[2] != PACKET_OUTGOING and segment and
                    segment[1] == self.broker_port and segment[2] > 0):
                self.times[segment[0]].append(now)

    def largest_gap(self, ports, start, end):
        """Largest gap in [start, end] over the connections of ports."""
        return max(largest_gap(self.times.get(port, []), start, end)
                   for port in ports)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()
