"""The shared cache and user locks across real forked processes."""

import os
import time

from uisge.tasks.cache import Cache
from uisge.tasks.locks import Locks


def test_cache_is_shared_with_a_forked_child_and_expires():
    cache = Cache("t", items=8, blocksize=64, keysize=32)
    assert cache.put(b"a", b"1", 0, replace=False) is True
    assert cache.put(b"a", b"2", 0, replace=False) is None  # cache_set never overwrites
    pid = os.fork()
    if pid == 0:
        ok = cache.get(b"a") == b"1" and cache.put(b"from-child", b"x", 0, replace=True)
        os._exit(0 if ok else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert cache.get(b"from-child") == b"x"
    assert cache.put(b"big", b"x" * 65, 0, replace=True) is None  # over blocksize: refused
    cache.put(b"short", b"v", 1, replace=True)
    time.sleep(1.1)
    assert cache.get(b"short") is None
    assert cache.delete(b"a") and cache.get(b"a") is None
    cache.clear()
    for i in range(7):  # items = 8 holds 7 keys: item 0 is never used, as in uWSGI
        assert cache.put(b"k%d" % i, b"v", 0, replace=True)
    assert cache.put(b"one-too-many", b"v", 0, replace=True) is None


def test_a_lock_held_by_one_process_blocks_another():
    locks = Locks(2)
    locks.lock(1)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if locks.is_locked(1) and not locks.is_locked(0) else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    locks.unlock(1)
    assert not locks.is_locked(1)
