#!/usr/bin/env python3
"""console.py - the `console` check's terminal side (checks/console.sh).

Inside the nested bed, a Debian-kernel guest with the Linux test initramfs
and no fvtest= (its /init then runs `setsid cttyhack sh -l` on ttyS0),
driven through ptys exactly as a person at a terminal would:

foreground  `./foldvm run --vm name=l,mem=256M,vcpus=2,kernel=,initrd=,disk=`
            in the foreground of a pty, from the build directory: the
            shell's prompt comes, a typed command runs (42 and the CPU
            count), ^C interrupts a `sleep` in the guest (job control: the
            shell has ttyS0 as its controlling terminal), Ctrl-A x quits and
            the terminal is as it was.
foldctl     the same guest run by `./foldvm run --console none` without a
            terminal, reached by `./foldctl console l` in a pty: the backlog
            shows the prompt, a typed command runs, Ctrl-] detaches (the
            guest runs on); attached again, `poweroff -f` typed there ends
            the guest, foldctl says the console closed, and foldvm ends 0
            with the guest as shutdown.

Usage: console.py foreground|foldctl BUILDDIR KERNEL INITRD DISK VCPUS OUTFILE
Prints one line per part, `seen: ...`, for the check's PASS line.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "integration"))
import console_pty  # noqa: E402  (Term, fail, LIVE)
from console_pty import Term, fail  # noqa: E402

BOOT = int(os.environ.get("BED_BOOT_TIMEOUT", "240"))
CMD_T = 120     # a typed command's output (emulated, nested)
PASTE_T = int(os.environ.get("BED_PASTE_TIMEOUT", "300"))
# lines of 100 bytes pasted into `cat` (64: 6,400 bytes; more to stress)
PASTE_N = int(os.environ.get("BED_PASTE_LINES", "64"))
BANNER = b"built-in commands."   # busybox ash's interactive banner
PROMPT = b"# "


T0 = time.monotonic()


def step(what):
    """A progress line on stderr (run-checks keeps it, the host can read it
    while the bed runs): where a check that never ends stopped."""
    sys.stderr.write("console: %6.1f s: %s\n" % (time.monotonic() - T0, what))
    sys.stderr.flush()


def spec(kernel, initrd, disk, vcpus):
    return "name=l,mem=256M,vcpus=%s,kernel=%s,initrd=%s,disk=%s" % (
        vcpus, kernel, initrd, disk)


def run_command(t, p, vcpus):
    """Type the probe command at the prompt found before offset p; return
    the offset after its output's next prompt and what it printed."""
    # What is typed is echoed as typed ($((6*7))); only the shell's
    # evaluation prints R=42.
    t.send(b"echo R=$((6*7)) N=$(grep -c ^processor /proc/cpuinfo)\r")
    want = ("R=42 N=%s" % vcpus).encode()
    p = t.expect(want, CMD_T, start=p)
    p = t.expect(PROMPT, CMD_T, start=p)
    return p, want.decode()


def foreground(builddir, kernel, initrd, disk, vcpus):
    os.chdir(builddir)
    t0 = time.monotonic()
    step("foreground: foldvm run in a pty")
    t = Term(["./foldvm", "run", "--vm", spec(kernel, initrd, disk, vcpus)])
    t.expect(b"Ctrl-A x quits", 60)
    t.wait_raw(60)
    p = t.expect(b"FV: no fvtest=", BOOT)
    p = t.expect(BANNER, CMD_T, start=p)
    p = t.expect(PROMPT, CMD_T, start=p)
    t_prompt = time.monotonic() - t0
    step("foreground: the prompt came")
    p, got = run_command(t, p, vcpus)
    # A pasted line of 600 bytes, far more than the UART's 16-byte FIFO, in
    # one write: the 8250 driver's interrupts take it all, none lost.
    t.send(b"echo LEN=$(printf %s " + b"x" * 600 + b" | wc -c)\r")
    p = t.expect(b"LEN=600", CMD_T, start=p)
    p = t.expect(PROMPT, CMD_T, start=p)
    # ^C reaches the guest as a byte and its tty driver makes it SIGINT for
    # the foreground job: the shell has a controlling terminal.
    step("foreground: ^C to a guest sleep")
    t.send(b"sleep 300\r")
    p = t.expect(b"sleep 300", CMD_T, start=p)
    time.sleep(2)
    t.send(b"\x03")
    p = t.expect(PROMPT, CMD_T, start=p)
    t.send(b"echo rc=$?\r")
    p = t.expect(b"rc=130", CMD_T, start=p)
    p = t.expect(PROMPT, CMD_T, start=p)
    step("foreground: Ctrl-A x")
    t.send(b"\x01x")
    rc = t.finish(60)
    # A Linux guest has no steps to fail: stopped on request, foldvm ends 0.
    row = re.search(rb"^l +256M +%s +stopped .*interrupted" % vcpus.encode(),
                    t.out[p:], re.M)
    if rc != 0 or not row:
        fail("after Ctrl-A x: foldvm exit %d, no 'l 256M %s stopped ... "
             "interrupted' row" % (rc, vcpus), t.out)
    if not t.restored():
        fail("the terminal mode was not restored after Ctrl-A x", t.out)
    t.close()
    return ("foldvm run in a pty: prompt after %.0f s, typed command printed "
            "'%s', a pasted 600-byte line arrived whole, ^C ended a guest "
            "'sleep 300' ($?=130), Ctrl-A x quit "
            "(foldvm exit %d, guest stopped), terminal restored" %
            (t_prompt, got, rc))


def foldctl(builddir, kernel, initrd, disk, vcpus, logdir):
    os.chdir(builddir)
    # foldvm's default log directory: the guest's serial output as written
    glog = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                        "foldvm-%d" % os.getuid(), "l.log")
    if os.path.exists(glog):
        os.unlink(glog)
    out = open(os.path.join(logdir, "bg.out"), "wb")
    t0 = time.monotonic()
    bg = subprocess.Popen(["./foldvm", "run", "--console", "none", "--vm",
                           spec(kernel, initrd, disk, vcpus)],
                          stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    console_pty.LIVE.append(bg)
    step("foldctl: foldvm run --console none started")
    # Wait for the shell's prompt in the guest's log before attaching, so
    # the prompt can only come from the console's backlog.
    end = time.monotonic() + BOOT
    bgout = os.path.join(logdir, "bg.out")
    while True:
        try:
            text = open(glog, "rb").read()
        except FileNotFoundError:
            text = b""
        # busybox's line editing asks for the cursor position (ESC [6n)
        # right after printing its prompt
        if BANNER in text and re.search(rb"# (\x1b\[6n)?$", text):
            break
        if bg.poll() is not None:
            fail("foldvm --console none ended (%d) before the prompt" %
                 bg.returncode, text)
        if time.monotonic() > end:
            fail("no shell prompt in %s after %d s" % (glog, BOOT), text)
        time.sleep(0.5)
    t_prompt = time.monotonic() - t0
    step("foldctl: the prompt is in the guest's log")
    ctl = ["./foldctl", "console", "l"]
    t = Term(ctl)
    t.expect(b"Escape character is ^]", 30)
    t.wait_raw(30)
    p = t.expect(BANNER, 30)
    p = t.expect(PROMPT, 30, start=p)
    p, got = run_command(t, p, vcpus)
    # PASTE_N (64) lines of 100 bytes pasted at once into `cat`, then ^D:
    # 6400 bytes, more than the UART's 4096-byte queue holds, so foldvm
    # stops reading the socket and resumes as the 8250 driver drains the
    # FIFO: all arrive, and the shell's prompt after cat's end says so.
    # The guest's echo is off meanwhile: Linux's n_tty drops the oldest
    # echoes when input outruns the output (a real terminal would see the
    # same), and what is counted is what reached the file.
    # E=2 is printed by the shell after stty -echo ran (the typed line's
    # echo shows $((1+1))): the paste starts with the guest's echo off.
    t.send(b"stty -echo; echo E=$((1+1)); cat >/tmp/paste; stty echo\r")
    p = t.expect(b"E=2", CMD_T, start=p)
    time.sleep(1)
    tp = time.monotonic()
    paste = b"".join(b"%03d " % (i % 1000) + b"y" * 95 + b"\r"
                     for i in range(PASTE_N)) + b"\x04"
    step("foldctl: pasting %d lines" % PASTE_N)
    t.paste(paste, PASTE_T)
    step("foldctl: pasted; waiting for cat's end")
    p = t.expect(PROMPT, PASTE_T, start=p)
    t_paste = time.monotonic() - tp
    t.send(b"echo P=$(wc -l </tmp/paste),$(wc -c </tmp/paste),"
           b"$(grep -c '^[0-9][0-9][0-9] y\\{95\\}$' /tmp/paste)\r")
    # (the guest's tty turns each CR into a newline: 99 bytes + 1 a line)
    p = t.expect(b"P=%d,%d,%d" % (PASTE_N, PASTE_N * 100, PASTE_N), CMD_T,
                 start=p)
    p = t.expect(PROMPT, CMD_T, start=p)
    step("foldctl: Ctrl-]")
    t.send(b"\x1d")
    rc = t.finish(30)
    if rc != 0:
        fail("foldctl console ended with %d after Ctrl-]" % rc, t.out)
    if not t.restored():
        fail("foldctl did not restore the terminal after Ctrl-]", t.out)
    t.close()
    if bg.poll() is not None:
        fail("the guest ended when foldctl detached")
    # Again: Enter gives a fresh prompt; poweroff -f ends the guest.
    t = Term(ctl)
    t.wait_raw(30)
    p = len(t.out)
    t.send(b"\r")
    p = t.expect(PROMPT, CMD_T, start=p)
    step("foldctl: attached again; poweroff -f")
    t.send(b"poweroff -f\r")
    rc = t.finish(CMD_T)
    if rc != 1 or b"closed" not in t.out:
        fail("foldctl after poweroff -f: rc %d" % rc, t.out)
    if not t.restored():
        fail("foldctl did not restore the terminal at the console's end",
             t.out)
    t.close()
    try:
        brc = bg.wait(60)
    except subprocess.TimeoutExpired:
        fail("poweroff -f did not end foldvm within 60 s",
             open(bgout, "rb").read())
    text = open(bgout, "rb").read().decode(errors="replace")
    row = re.search(r"^l +[0-9]+[MG] +[0-9]+ +shutdown.*$", text, re.M)
    if brc != 0 or not row:
        fail("foldvm after poweroff -f: exit %d, row %r" %
             (brc, row.group(0) if row else None), text.encode())
    return ("foldvm run --console none + foldctl console: prompt after %.0f s, "
            "in the backlog; typed command printed '%s'; %d pasted lines "
            "(%d bytes) reached cat whole in %.0f s; "
            "Ctrl-] detached "
            "(exit 0), guest ran on; attached again, poweroff -f: foldctl "
            "'closed' (exit 1), foldvm exit 0, '%s'" %
            (t_prompt, got, PASTE_N, PASTE_N * 100, t_paste, re.sub(r"\s+", " ", row.group(0).strip())))


if __name__ == "__main__":
    # run-checks' bound (timeout) ends a check with SIGTERM: say where it was
    signal.signal(signal.SIGTERM, lambda *_: fail(
        "stopped by SIGTERM (the check's time bound)",
        console_pty.TERMS[-1].out if console_pty.TERMS else b""))
    if len(sys.argv) != 8 or sys.argv[1] not in ("foreground", "foldctl"):
        sys.exit(__doc__)
    part, builddir, kernel, initrd, disk, vcpus, outfile = sys.argv[1:]
    if part == "foreground":
        seen = foreground(builddir, kernel, initrd, disk, vcpus)
    else:
        seen = foldctl(builddir, kernel, initrd, disk, vcpus,
                       os.path.dirname(outfile))
    with open(outfile, "w") as f:
        f.write(seen + "\n")
