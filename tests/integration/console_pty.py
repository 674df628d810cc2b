#!/usr/bin/env python3
"""console_pty.py - drive a guest's serial console through a terminal.

Used by console.sh.  Each check starts a program (foldvm or foldctl) on the
slave side of a fresh pty, as its controlling terminal and in its
foreground process group, as a shell would, and talks to it through the
master.  The test payload's `echo:N` step prompts "echo> ", reads a line
from its 16550 and writes "ECHO: " and the line uppercased, so seeing
ECHO: HELLO proves the guest received what was typed.  The terminal's mode
is read from the slave side before, during and after: raw while the
console runs, exactly as it was once the program is gone.

Usage: console_pty.py CHECK BUILDDIR VARIANT RUNDIR LOGDIR
"""
import errno
import fcntl
import os
import select
import signal
import socket
import subprocess
import sys
import termios
import time

TIMEOUT = 120
LIVE = []       # programs started here, ended if a check fails
TERMS = []      # the terminals opened here, newest last


def fail(msg, out=b""):
    for p in LIVE:
        if p.poll() is None:
            p.kill()
            p.wait()
    sys.stderr.write("FAIL: %s\n" % msg)
    if out:
        sys.stderr.write("--- terminal output:\n%r\n" % out[-3000:])
    sys.exit(1)


class Term:
    """A program on a new pty: its controlling terminal, foreground."""

    def __init__(self, argv):
        self.master, self.slave = os.openpty()
        # a cooked terminal as a login shell leaves it
        attrs = termios.tcgetattr(self.slave)
        attrs[3] |= termios.ICANON | termios.ECHO | termios.ISIG
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.before = termios.tcgetattr(self.slave)
        slave = self.slave

        def child():
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                     stderr=slave, preexec_fn=child,
                                     close_fds=True)
        LIVE.append(self.proc)
        TERMS.append(self)
        self.out = b""

    def mode(self):
        return termios.tcgetattr(self.slave)

    def raw(self):
        lflag = self.mode()[3]
        return not (lflag & (termios.ICANON | termios.ECHO | termios.ISIG))

    def read_some(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError as e:
            if e.errno == errno.EIO:
                return False
            raise
        self.out += data
        return True

    def expect(self, what, timeout=TIMEOUT, start=0):
        """Wait until `what` appears in the output after offset start."""
        end = time.monotonic() + timeout
        while what not in self.out[start:]:
            left = end - time.monotonic()
            if left <= 0:
                fail("no %r on the terminal after %d s" % (what, timeout),
                     self.out)
            self.read_some(min(left, 0.5))
        return self.out.index(what, start) + len(what)

    def wait_raw(self, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while not self.raw():
            if time.monotonic() > end:
                fail("the terminal never went raw", self.out)
            self.read_some(0.1)

    def send(self, data):
        os.write(self.master, data)

    def paste(self, data, timeout=TIMEOUT):
        """Write all of data as a paste would, reading the program's output
        meanwhile: a blocking write into a full pty while the program waits
        for its own output to be read would hang both."""
        end = time.monotonic() + timeout
        fl = fcntl.fcntl(self.master, fcntl.F_GETFL)
        fcntl.fcntl(self.master, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            while data:
                left = end - time.monotonic()
                if left <= 0:
                    fail("the terminal took only part of a paste in %d s "
                         "(%d bytes left)" % (timeout, len(data)), self.out)
                r, w, _ = select.select([self.master], [self.master], [],
                                        min(left, 0.5))
                if r:
                    self.read_some(0)
                if w:
                    try:
                        data = data[os.write(self.master, data):]
                    except BlockingIOError:
                        pass
        finally:
            fcntl.fcntl(self.master, fcntl.F_SETFL, fl)

    def finish(self, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > end:
                self.proc.kill()
                fail("%s did not end" % self.proc.args[0], self.out)
            self.read_some(0.1)
        while self.read_some(0.2):
            pass
        return self.proc.returncode

    def restored(self):
        now = self.mode()
        return now == self.before

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def foldvm(builddir, variant, rundir, logdir, name, steps, extra=()):
    return [os.path.join(builddir, variant), "run", "--run-dir", rundir,
            "--log-dir", logdir] + list(extra) + [
            "--vm", "name=%s,mem=32M,steps=%s" % (name, steps)]


def check_foreground(builddir, variant, rundir, logdir):
    """auto: one guest in the foreground of a terminal gets it."""
    t = Term(foldvm(builddir, variant, rundir, logdir, "fg", "echo:2+verify"))
    t.expect(b"Ctrl-A x quits")
    t.wait_raw()
    p = t.expect(b"echo> ")
    # Enter in raw mode is CR; ^C is a byte for the guest, not a signal.
    t.send(b"hello, console\r")
    p = t.expect(b"ECHO: HELLO, CONSOLE", start=p)
    p = t.expect(b"echo> ", start=p)
    # More than the 16-byte FIFO at once: nothing may be lost.
    long_line = b"abcdefghijklmnopqrstuvwxyz0123456789" * 5
    t.send(b"x\x03y" + long_line + b"\r")
    t.expect(b"ECHO: X\x03Y" + long_line.upper(), start=p)
    rc = t.finish()
    if rc != 0:
        fail("foldvm ended with %d (the guest did not finish)" % rc, t.out)
    # raw output, not "[fg] ..." lines
    if b"[fg] " in t.out:
        fail("the guest's output was echoed as [fg] lines too", t.out)
    if not t.restored():
        fail("the terminal mode was not restored", t.out)
    t.close()


def check_quit(builddir, variant, rundir, logdir):
    """Ctrl-A x ends foldvm (the guest waits for a line forever)."""
    t = Term(foldvm(builddir, variant, rundir, logdir, "q", "echo:1"))
    t.wait_raw()
    t.expect(b"echo> ")
    t.send(b"\x01h")
    t.expect(b"quit: stop the guest and foldvm")
    t.send(b"ab\x01\x01")   # Ctrl-A twice: one Ctrl-A for the guest
    t.send(b"\x01x")
    rc = t.finish(60)
    if rc == 0:
        fail("foldvm ended with 0 after Ctrl-A x (its guest never finished)",
             t.out)
    if b"STATE" not in t.out:
        fail("no table after Ctrl-A x", t.out)
    if not t.restored():
        fail("the terminal mode was not restored after Ctrl-A x", t.out)
    t.close()


def check_sigterm(builddir, variant, rundir, logdir):
    """A signal from outside ends foldvm and gives the terminal back."""
    t = Term(foldvm(builddir, variant, rundir, logdir, "s", "echo:1"))
    t.wait_raw()
    t.expect(b"echo> ")
    t.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t.proc.send_signal(signal.SIGTERM)
    t.finish(60)
    if not t.restored():
        fail("the terminal mode was not restored after SIGTERM", t.out)
    t.close()
    t = Term(foldvm(builddir, variant, rundir, logdir, "h", "echo:1"))
    t.wait_raw()
    t.expect(b"echo> ")
    t.proc.send_signal(signal.SIGHUP)
    rc = t.finish(60)
    if rc != -signal.SIGHUP:
        fail("foldvm did not end by SIGHUP (%d)" % rc, t.out)
    if not t.restored():
        fail("the terminal mode was not restored after SIGHUP", t.out)
    t.close()


def check_none(builddir, variant, rundir, logdir):
    """--console none, or auto with two guests: the terminal stays cooked,
    output as [name] lines."""
    t = Term(foldvm(builddir, variant, rundir, logdir, "n", "verify",
                    ["--console", "none"]))
    rc = t.finish()
    if rc != 0 or b"[n] foldvm payload" not in t.out:
        fail("--console none: rc %d" % rc, t.out)
    if not t.restored():
        fail("--console none changed the terminal", t.out)
    t.close()
    # auto with two guests: no console either
    argv = foldvm(builddir, variant, rundir, logdir, "t1", "verify")
    argv += ["--vm", "name=t2,mem=32M,steps=verify"]
    t = Term(argv)
    rc = t.finish()
    if rc != 0 or b"[t1] foldvm payload" not in t.out or \
            b"[t2] foldvm payload" not in t.out or b"Ctrl-A" in t.out:
        fail("two guests on a terminal: rc %d" % rc, t.out)
    if not t.restored():
        fail("two guests changed the terminal", t.out)
    t.close()


def check_foldctl(builddir, variant, rundir, logdir):
    """foldctl console on a guest started without a terminal."""
    log = open(os.path.join(logdir, "bg.out"), "wb")
    bg = subprocess.Popen(foldvm(builddir, variant, rundir, logdir, "bg",
                                 "echo:2+verify"),
                          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    LIVE.append(bg)
    sock = os.path.join(rundir, "bg.console")
    end = time.monotonic() + TIMEOUT
    while not os.path.exists(sock):
        if time.monotonic() > end or bg.poll() is not None:
            fail("no %s" % sock)
        time.sleep(0.1)
    ctl = [os.path.join(builddir, "foldctl"), "--run-dir", rundir,
           "console", "bg"]
    t = Term(ctl)
    t.expect(b"Escape character is ^]")
    t.wait_raw()
    # the backlog: the prompt was written before we came
    p = t.expect(b"echo> ")
    # a second client is refused with a line saying why
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.settimeout(30)
    got = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()
    if b"in use by another client" not in got:
        fail("second client: %r" % got)
    t.send(b"through foldctl\r")
    p = t.expect(b"ECHO: THROUGH FOLDCTL", start=p)
    # Ctrl-] detaches; the guest runs on
    t.send(b"\x1d")
    rc = t.finish(30)
    if rc != 0:
        fail("foldctl console ended with %d after Ctrl-]" % rc, t.out)
    if not t.restored():
        fail("foldctl did not restore the terminal", t.out)
    t.close()
    if bg.poll() is not None:
        fail("the guest ended when foldctl detached")
    # attach again: the second line
    t = Term(ctl)
    t.wait_raw()
    t.expect(b"echo> ")
    t.send(b"again\r")
    t.expect(b"ECHO: AGAIN")
    # the guest finishes: the console closes, foldctl says so and ends
    rc = t.finish()
    if rc != 1 or b"closed" not in t.out:
        fail("foldctl after the guest ended: rc %d" % rc, t.out)
    if not t.restored():
        fail("foldctl did not restore the terminal at the console's end",
             t.out)
    t.close()
    if bg.wait(60) != 0:
        fail("the background guest failed: %s" %
             open(os.path.join(logdir, "bg.out")).read())


CHECKS = {
    "foreground": check_foreground,
    "quit": check_quit,
    "signals": check_sigterm,
    "none": check_none,
    "foldctl": check_foldctl,
}

if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] not in CHECKS:
        sys.exit(__doc__)
    CHECKS[sys.argv[1]](*sys.argv[2:])
    print("ok: %s" % sys.argv[1])
