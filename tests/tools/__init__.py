#: Hostile code for the sandbox tests: a double-forked daemon in its own session, then 200
#: processes; the caller appends the body of the ``except OSError as exc:`` that reports a refusal.
DAEMON_AND_FORKS = """
import os, subprocess
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '601'])
    os._exit(0)
os.waitpid(pid, 0)
started = 0
try:
    for _ in range(200):
        subprocess.Popen(['sleep', '600']); started += 1
except OSError as exc:
"""
