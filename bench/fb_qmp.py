"""A minimal QMP client for foldvm's control sockets (docs/qmp.md)."""
import json
import os
import socket
import time


class QMPError(RuntimeError):
    pass


class QMP:
    def __init__(self, path, timeout=600):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        if "QMP" not in self._read():
            raise QMPError("no QMP greeting on %s" % path)
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise QMPError("foldvm closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self._read()
            if "event" in msg:
                continue
            if "error" in msg:
                raise QMPError("%s: %s" % (name, msg["error"]["desc"]))
            return msg["return"]

    def close(self):
        self.sock.close()


class WaitTimeout(RuntimeError):
    """What wait_for raises when the condition did not come in time."""


def wait_for(pred, timeout, what, interval=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(interval)
    raise WaitTimeout("timed out after %d s waiting for %s" % (timeout, what))


class Sockets:
    """One connection to the host socket and one to each guest's."""

    def __init__(self, rundir):
        self.rundir = rundir
        wait_for(lambda: os.path.exists(self.path("host")), 30, "foldvm's host socket")
        self.host = QMP(self.path("host"))
        self.guests = {}

    def path(self, name):
        return os.path.join(self.rundir, name + ".qmp")

    def guest(self, name):
        if name not in self.guests:
            self.guests[name] = QMP(self.path(name))
        return self.guests[name]

    def close(self):
        for q in [self.host] + list(self.guests.values()):
            try:
                q.close()
            except OSError:
                pass
