# Stand-in for MicroPython's native `_asyncio` module (TaskQueue and Task) inside the emulator. The native module
# stamps newly scheduled tasks with the C ticks counter, which knows nothing of the virtual clock, so a task created
# at virtual time t would be seen as due at the host's real uptime. This module keeps the same contract as the
# native one (peek/push/pop/remove; a Task awaitable and cancellable) with every timestamp taken from the shimmed
# `time`. The ROM installs it as sys.modules["_asyncio"] before the firmware imports asyncio; boards keep theirs.
import time

_core = None


def _c():
    global _core
    if _core is None:
        from asyncio import core

        _core = core
    return _core


class TaskQueue:
    """Tasks ordered by due time (ticks, wrap-aware); equal keys keep their arrival order."""

    def __init__(self):
        self._q = []

    def peek(self):
        return self._q[0] if self._q else None

    def push(self, v, key=None):
        v.data = None
        v.ph_key = time.ticks_ms() if key is None else key
        q = self._q
        i = len(q)
        while i > 0 and time.ticks_diff(v.ph_key, q[i - 1].ph_key) < 0:
            i -= 1
        q.insert(i, v)

    def pop(self):
        return self._q.pop(0)

    def remove(self, v):
        q = self._q
        for i in range(len(q)):
            if q[i] is v:
                del q[i]
                return


class Task:
    def __init__(self, coro, globals=None):
        self.coro = coro
        self.data = None
        # True: running; a TaskQueue: tasks awaiting this one; a callable: done-callback; None/False: finished
        # (False once the result has been collected)
        self.state = True
        self.ph_key = 0

    def __iter__(self):
        if not self.state:
            self.state = False
        elif self.state is True:
            self.state = TaskQueue()
        elif type(self.state) is not TaskQueue:
            raise RuntimeError("can't wait")
        return self

    def __next__(self):
        if not self.state:
            raise self.data
        core = _c()
        self.state.push(core.cur_task)
        core.cur_task.data = self

    def done(self):
        return not self.state

    def cancel(self):
        if not self.state:
            return False
        core = _c()
        if self is core.cur_task:
            raise RuntimeError("can't cancel self")
        t = self
        while isinstance(t.data, Task):
            t = t.data
        if hasattr(t.data, "remove"):
            t.data.remove(t)
            core._task_queue.push(t)
        elif time.ticks_diff(t.ph_key, time.ticks_ms()) > 0:
            core._task_queue.remove(t)
            core._task_queue.push(t)
        t.data = core.CancelledError
        return True
