"""Storage for provider limits and spend, shared by every process (diskcache) or host (Redis).

Both backends are storages of the ``limits`` library (the one Flask-Limiter and slowapi use):
:class:`DiskcacheStorage` implements its ``Storage`` and ``MovingWindowSupport`` interfaces over
a private folder of the state directory and registers the scheme ``flightsync+diskcache``, so
``limits.storage.storage_from_string`` and every ``limits`` strategy run on it; Redis is
``limits``' own :class:`~limits.storage.RedisStorage`, extended only by one Lua script.

Both add one operation ``limits`` has no strategy for, :meth:`acquire_sent` and its pair
:meth:`settle_sent`: a moving window that counts a call from the moment it is admitted *until
one window after it has finished*. ``limits``' moving window timestamps a call when it is
admitted; a call admitted at t but sent (or received) a little later can then share one
window at the provider with calls admitted at t + 1 s. Counting a call as in flight until its
answer is back, then by the time it finished, makes the guarantee exact: whenever the provider
saw N + 1 calls within one window, the last admitted of them would have found the other N
still counted. Finished calls are counted in 100 buckets per window, rounded up (a bucket
counts as long as any part of it is in the window), so the state stays small whatever the
limit and the rounding only ever admits less (at most 1 %).

The same operation takes "charges": counters added to in the same atomic step (calls per
calendar period, spend in micro-units), each with an optional cap that refuses the call when
it would pass it, and a key that blocks every call while it exists (the provider said its quota
is spent). One round trip per call for all of a provider's limits, budgets and counters.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import diskcache
from limits.storage import MovingWindowSupport, RedisStorage, Storage

from flightsync.resilience._sentwindow import (
    Admission,
    Charge,
    SentWindowStorage,
    Window,
    count_finished,
    prune,
    window_wait,
)
from flightsync.resilience._state import open_private_cache


class DiskcacheStorage(Storage, MovingWindowSupport, SentWindowStorage):
    """``limits`` storage over a private diskcache folder (``flightsync+diskcache:///PATH``):
    one SQLite file shared by every process of the host, each operation one transaction."""

    STORAGE_SCHEME = ["flightsync+diskcache"]  # noqa: RUF012 - limits' registry reads it

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: float | str | bool) -> None:
        path = (uri or "").split("://", 1)[-1]
        if not path:
            raise ValueError("flightsync+diskcache needs a folder: flightsync+diskcache:///PATH")
        self.cache: diskcache.Cache = open_private_cache(Path(path))
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (OSError, diskcache.Timeout)

    # -- limits' Storage ----------------------------------------------------------------
    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with self.cache.transact(retry=True):
            return self._incr(key, expiry, amount)

    def _incr(self, key: str, expiry: float, amount: int) -> int:
        # As limits' other storages: the expiry is set when the counter is created.
        current = self.cache.get(key, retry=True)
        if not isinstance(current, int):
            self.cache.set(key, amount, expire=expiry, retry=True)
            self.cache.set(f"{key}/expires", time.time() + expiry, expire=expiry, retry=True)
            return amount
        value = int(self.cache.incr(key, amount, retry=True))
        return value

    def get(self, key: str) -> int:
        value = self.cache.get(key, retry=True)
        return value if isinstance(value, int) else 0

    def get_expiry(self, key: str) -> float:
        value = self.cache.get(f"{key}/expires", retry=True)
        return float(value) if isinstance(value, float) else time.time()

    def check(self) -> bool:
        try:
            self.cache.get("check", retry=True)
        except (OSError, diskcache.Timeout):
            return False
        return True

    def reset(self) -> int | None:
        count = len(self.cache)
        self.cache.clear(retry=True)
        return count

    def clear(self, key: str) -> None:
        for name in (key, f"{key}/expires", f"{key}/events"):
            self.cache.delete(name, retry=True)

    # -- limits' MovingWindowSupport (so limits' MovingWindowRateLimiter runs here too) ------
    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        with self.cache.transact(retry=True):
            now = time.time()
            events = [t for t in self.cache.get(f"{key}/events", [], retry=True)
                      if t > now - expiry]
            if len(events) + amount > limit:
                return False
            events.extend([now] * amount)
            self.cache.set(f"{key}/events", events, expire=expiry, retry=True)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        events = [t for t in self.cache.get(f"{key}/events", [], retry=True)
                  if t > now - expiry]
        return (min(events), len(events)) if events else (now, 0)

    # -- SentWindowStorage ----------------------------------------------------------------
    def acquire_sent(self, key: str, windows: Sequence[Window], token: str, hold: float, *,
                     charges: Sequence[Charge] = (), block: str | None = None) -> Admission:
        with self.cache.transact(retry=True):
            now = time.time()
            if block is not None and (until := self.blocked_until(block)) is not None:
                return Admission("blocked", wait=until - now)
            state: dict[str, Any] = self.cache.get(key, None, retry=True) or {}
            prune(state, windows, now)
            waits = [w for w in (window_wait(state, win, now) for win in windows)
                     if w is not None]
            if waits:
                self.cache.set(key, state, retry=True)
                return Admission("wait", wait=max(waits))
            for index, charge in enumerate(charges):
                if charge.cap is not None and self.get(charge.key) + charge.amount > charge.cap:
                    return Admission("cap", charge=index)
            for charge in charges:
                self._incr(charge.key, charge.expiry, charge.amount)
            if windows:  # without a window nothing counts the call in flight
                state["f"][token] = now + hold
                self.cache.set(key, state, retry=True)
            return Admission("ok")

    def settle_sent(self, key: str, windows: Sequence[Window], token: str) -> None:
        with self.cache.transact(retry=True):
            now = time.time()
            state: dict[str, Any] = self.cache.get(key, None, retry=True) or {}
            if state.get("f", {}).pop(token, None) is not None:
                count_finished(state, windows, now)
            prune(state, windows, now)
            self.cache.set(key, state, retry=True)

    def sent_counts(self, key: str, windows: Sequence[Window]) -> list[int]:
        now = time.time()
        state: dict[str, Any] = self.cache.get(key, None, retry=True) or {}
        prune(state, windows, now)
        flying = len(state.get("f", {}))
        return [flying + sum(state["w"].get(w.name, {}).values()) for w in windows]

    def counter(self, key: str) -> int:
        return self.get(key)

    def block_for(self, key: str, seconds: float) -> None:
        with self.cache.transact(retry=True):
            until = max(time.time() + seconds, self.blocked_until(key) or 0.0)
            self.cache.set(key, until, expire=max(until - time.time(), 0.001), retry=True)

    def blocked_until(self, key: str) -> float | None:
        value = self.cache.get(key, retry=True)
        return float(value) if isinstance(value, float) and value > time.time() else None

    def close(self) -> None:
        self.cache.close()


# One round trip for a whole admission. Times are the server's (TIME), in microseconds, so
# hosts whose clocks differ still share one timeline. KEYS: the state hash of in-flight calls
# (token -> hold end), one hash of buckets per window, then one key per charge, then the block
# key. ARGV: token, hold (us), window count, charge count, has-block, then amount and seconds
# per window, then amount, expiry (s) and cap (-1: none) per charge.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local token, hold = ARGV[1], tonumber(ARGV[2])
local nw, nc, hasblock = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if hasblock == 1 then
  local until_ = tonumber(redis.call('GET', KEYS[2 + nw + nc]) or '0')
  if until_ > now then return {'blocked', tostring((until_ - now) / 1e6), -1} end
end
local function count_finished(at)
  for i = 1, nw do
    local secs = tonumber(ARGV[5 + 2 * i])
    local width = secs * 1000000 / 100
    local field = string.format('%.0f', math.floor(at / width))
    redis.call('HINCRBY', KEYS[1 + i], field, 1)
    redis.call('PEXPIRE', KEYS[1 + i], secs * 2000 + 1000)
  end
end
local flying = redis.call('HGETALL', KEYS[1])
for j = 1, #flying, 2 do
  local until_ = tonumber(flying[j + 1])
  if until_ <= now then
    redis.call('HDEL', KEYS[1], flying[j])
    count_finished(until_)
  end
end
local inflight = redis.call('HLEN', KEYS[1])
local longest = -1
for i = 1, nw do
  local amount, secs = tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i])
  local width = secs * 1000000 / 100
  local span = secs * 1000000
  local buckets = redis.call('HGETALL', KEYS[1 + i])
  local kept, count = {}, inflight
  for j = 1, #buckets, 2 do
    local b, n = tonumber(buckets[j]), tonumber(buckets[j + 1])
    if (b + 1) * width <= now - span then
      redis.call('HDEL', KEYS[1 + i], buckets[j])
    else
      kept[#kept + 1] = {b, n}
      count = count + n
    end
  end
  if count >= amount then
    table.sort(kept, function(x, y) return x[1] < y[1] end)
    local wait = 0
    for _, e in ipairs(kept) do
      count = count - e[2]
      if count < amount then
        wait = math.max((e[1] + 1) * width + span - now, 0)
        break
      end
    end
    if wait > longest then longest = wait end
  end
end
if longest >= 0 then return {'wait', tostring(longest / 1e6), -1} end
local base = 5 + 2 * nw
for c = 1, nc do
  local amount, cap = tonumber(ARGV[base + 3 * c - 2]), tonumber(ARGV[base + 3 * c])
  if cap >= 0 and tonumber(redis.call('GET', KEYS[1 + nw + c]) or '0') + amount > cap then
    return {'cap', '0', c - 1}
  end
end
for c = 1, nc do
  local k = KEYS[1 + nw + c]
  local amount = tonumber(ARGV[base + 3 * c - 2])
  if redis.call('INCRBY', k, amount) == amount then
    redis.call('EXPIRE', k, tonumber(ARGV[base + 3 * c - 1]))
  end
end
if nw > 0 then
  redis.call('HSET', KEYS[1], token, string.format('%.0f', now + hold))
  redis.call('PEXPIRE', KEYS[1], math.floor(hold / 1000) + 1000)
end
return {'ok', '0', -1}
"""

_SETTLE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  for i = 1, #KEYS - 1 do
    local secs = tonumber(ARGV[1 + i])
    local field = string.format('%.0f', math.floor(now / (secs * 1000000 / 100)))
    redis.call('HINCRBY', KEYS[1 + i], field, 1)
    redis.call('PEXPIRE', KEYS[1 + i], secs * 2000 + 1000)
  end
end
return 1
"""

_COUNTS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local flying = redis.call('HVALS', KEYS[1])
local inflight = 0
for _, v in ipairs(flying) do if tonumber(v) > now then inflight = inflight + 1 end end
local out = {}
for i = 1, #KEYS - 1 do
  local span = tonumber(ARGV[i]) * 1000000
  local width = span / 100
  local count = inflight
  local buckets = redis.call('HGETALL', KEYS[1 + i])
  for j = 1, #buckets, 2 do
    if (tonumber(buckets[j]) + 1) * width > now - span then
      count = count + tonumber(buckets[j + 1])
    end
  end
  out[#out + 1] = count
end
return out
"""

_BLOCK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if old > until_ then until_ = old end
local px = math.floor((until_ - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', px)
return 1
"""


class SharedRedisStorage(RedisStorage, SentWindowStorage):
    """``limits``' Redis storage with the sent-window operation as Lua scripts (one round
    trip each); every key carries ``limits``' key prefix."""

    STORAGE_SCHEME = ["flightsync+redis"]  # noqa: RUF012 - limits' registry reads it

    def __init__(self, uri: str, key_prefix: str = RedisStorage.PREFIX) -> None:
        # A short socket timeout: a Redis that stops answering must not hold a call for ever.
        super().__init__(uri.replace("flightsync+", "", 1), key_prefix=key_prefix,
                         socket_timeout=5.0, socket_connect_timeout=5.0)
        client = self.storage
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._settle = client.register_script(_SETTLE_LUA)
        self._counts = client.register_script(_COUNTS_LUA)
        self._block = client.register_script(_BLOCK_LUA)

    def _keys(self, key: str, windows: Sequence[Window]) -> list[str]:
        return [self.prefixed_key(f"{key}/f"),
                *(self.prefixed_key(f"{key}/w{w.name}") for w in windows)]

    def acquire_sent(self, key: str, windows: Sequence[Window], token: str, hold: float, *,
                     charges: Sequence[Charge] = (), block: str | None = None) -> Admission:
        keys = [*self._keys(key, windows), *(self.prefixed_key(c.key) for c in charges)]
        args: list[Any] = [token, int(hold * 1e6), len(windows), len(charges),
                           int(block is not None)]
        for window in windows:
            args += [window.amount, window.seconds]
        for charge in charges:
            args += [charge.amount, charge.expiry, -1 if charge.cap is None else charge.cap]
        if block is not None:
            keys.append(self.prefixed_key(block))
        verdict, wait, charge_index = self._acquire(keys=keys, args=args)
        return Admission(_text(verdict), wait=float(_text(wait)), charge=int(charge_index))

    def settle_sent(self, key: str, windows: Sequence[Window], token: str) -> None:
        self._settle(keys=self._keys(key, windows), args=[token, *(w.seconds for w in windows)])

    def sent_counts(self, key: str, windows: Sequence[Window]) -> list[int]:
        counts = self._counts(keys=self._keys(key, windows), args=[w.seconds for w in windows])
        return [int(c) for c in counts]

    def counter(self, key: str) -> int:
        return int(self.get(key))

    def block_for(self, key: str, seconds: float) -> None:
        self._block(keys=[self.prefixed_key(key)], args=[int(seconds * 1e6)])

    def blocked_until(self, key: str) -> float | None:
        value = self.storage.get(self.prefixed_key(key))
        if value is None:
            return None
        server_seconds, micros = self.storage.time()
        now_us = int(server_seconds) * 1_000_000 + int(micros)
        left = (int(value) - now_us) / 1e6
        return time.time() + left if left > 0 else None

    def close(self) -> None:
        self.storage.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def open_storage(state_url: str | None, state_dir: Path, *,
                 key_prefix: str = "flightsync:limits") -> SentWindowStorage:
    """The storage for ``state_url`` (``redis://`` or ``rediss://``: shared by every host),
    else the diskcache folder ``limits/`` of the state directory (every process of the
    host)."""
    if state_url:
        return SharedRedisStorage(state_url, key_prefix=key_prefix)
    return DiskcacheStorage(f"flightsync+diskcache://{state_dir / 'limits'}")
