"""A loopback TCP proxy that timestamps every client-to-broker AMQP frame.

AMQP 0-9-1 framing: after the 8-byte protocol header, each frame is
type (1 byte), channel (2), payload size (4), payload, frame-end 0xCE.
Broker-to-client bytes are forwarded untouched.
"""

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
        times = [start] + [t for t, _ in self.frames if start < t < end] + [
            end]
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
