"""Wake long-polling requests when the store changes.

Store writes happen in worker threads; the long-poll waits on the event loop.
`ChangeNotifier.notify()` is safe to call from any thread: it hops onto the
loop with `call_soon_threadsafe` and wakes every waiter on an asyncio
Condition, so waiting never blocks the loop or a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib


class ChangeNotifier:
    """A generation counter plus an asyncio Condition bound to one event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cond: asyncio.Condition | None = None
        self.generation = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the serving loop (called at application start-up)."""
        self._loop = loop
        self._cond = asyncio.Condition()

    def notify(self) -> None:
        """Signal a change; callable from any thread, a no-op before `bind`."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(self._wake())
        else:
            loop.call_soon_threadsafe(lambda: loop.create_task(self._wake()))

    async def _wake(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self.generation += 1
            self._cond.notify_all()

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until the generation moves past `seen` or `timeout` passes; return it."""
        if self._cond is None:
            await asyncio.sleep(timeout)
            return self.generation
        async with self._cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._cond.wait_for(lambda: self.generation != seen), timeout
                )
            return self.generation
