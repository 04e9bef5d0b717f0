"""A target snippet (for tests/targets.spawn_target) that builds mappings of every kind.

The snippet expects ``WORKDIR`` (a directory it may write) in its globals
(``spawn_target(f"WORKDIR = {d!r}" + KNOWN_MAPPINGS)``) and reports, per
mapping, its start address and size, plus whatever it could not build.
"""

KNOWN_MAPPINGS = r'''
import mmap as _m
PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_ANON = 0x01, 0x02, 0x20
FAILED = ctypes.c_void_p(-1).value
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]

def anon(npages, prot=PROT_READ | PROT_WRITE, flags=MAP_PRIVATE | MAP_ANON):
    """npages of anonymous memory between two PROT_NONE pages, so the kernel
    cannot merge it with a neighbouring mapping: its VMA is exactly ours."""
    a = libc.mmap(None, (npages + 2) * PAGE, PROT_NONE, flags, -1, 0)
    assert a not in (None, FAILED), ctypes.get_errno()
    if prot != PROT_NONE:
        assert libc.mprotect(a + PAGE, npages * PAGE, prot) == 0, ctypes.get_errno()
    return a + PAGE

def touch(addr, indices):
    for i in indices:
        ctypes.memset(addr + i * PAGE, 0x41 + i % 26, 1)

def file_of(name, npages):
    path = os.path.join(WORKDIR, name)
    with open(path, "wb") as f:
        f.write(bytes([0x61]) * (npages * PAGE))
        f.flush()
        os.fsync(f.fileno())          # clean page cache: only our writes through the mapping are dirty
    return path

def fmap(path, npages, prot, flags):
    fd = os.open(path, os.O_RDWR)
    a = libc.mmap(None, npages * PAGE, prot, flags, fd, 0)
    os.close(fd)                      # the mapping keeps the file open
    assert a not in (None, FAILED), ctypes.get_errno()
    return a

# anonymous private, pages 0, 2 and 5 of 8 written
a = anon(8); touch(a, [0, 2, 5]); report["anon"] = [a, 8, [0, 2, 5]]
# MAP_PRIVATE file with a space in its name, pages 1 and 3 of 6 written (COW)
p = file_of("private file (copy).bin", 6)
b = fmap(p, 6, PROT_READ | PROT_WRITE, MAP_PRIVATE)
for i in (0, 1, 2, 3, 4, 5):
    ctypes.c_char.from_address(b + i * PAGE).value     # read all: page cache pages
touch(b, [1, 3]); report["file_private"] = [b, 6, [1, 3], p]
# MAP_SHARED file, page 2 of 4 written; fd closed right after mmap
p = file_of("shared.bin", 4)
c = fmap(p, 4, PROT_READ | PROT_WRITE, MAP_SHARED); touch(c, [2]); report["file_shared"] = [c, 4, [2], p]
# one anonymous region split in three by mprotect of its middle pages
d = anon(9); touch(d, range(9))
assert libc.mprotect(d + 3 * PAGE, 3 * PAGE, PROT_READ) == 0
report["split"] = [d, 9, list(range(9))]
# PROT_NONE reservation
e = anon(5, prot=PROT_NONE); report["guard"] = [e, 5, []]
# a file mapping whose file is then unlinked
p = file_of("gone soon.bin", 3)
f = fmap(p, 3, PROT_READ, MAP_PRIVATE); ctypes.c_char.from_address(f).value
os.unlink(p); report["deleted"] = [f, 3, [0], p]
# shared anonymous memory (the kernel names it /dev/zero (deleted))
g = anon(4, flags=MAP_SHARED | MAP_ANON); touch(g, [0, 1]); report["anon_shared"] = [g, 4, [0, 1]]
# SysV shared memory, removed at once (IPC_RMID) so nothing outlives the test
shmid = libc.shmget(0, 4 * PAGE, 0o600 | 0o1000)
if shmid >= 0:
    h = libc.shmat(shmid, None, 0)
    libc.shmctl(shmid, 0, None)       # IPC_RMID: freed when detached / on exit
    touch(h, [3]); report["shm"] = [h, 4, [3], shmid]
else:
    report.setdefault("skipped", []).append("shm: shmget failed")
# a named anonymous region: PR_SET_VMA / PR_SET_VMA_ANON_NAME (Linux 5.17+)
i_ = anon(2); touch(i_, [1])
name = b"vmainspect test"
buf = ctypes.create_string_buffer(name)
if libc.prctl(0x53564d41, 0, i_, 2 * PAGE, ctypes.addressof(buf)) == 0:
    report["anon_named"] = [i_, 2, [1], name.decode()]
else:
    report.setdefault("skipped", []).append("anon name: prctl(PR_SET_VMA) failed")
# a memfd mapping
mfd = os.memfd_create("vmainspect-memfd")
os.ftruncate(mfd, 2 * PAGE)
j = libc.mmap(None, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0); os.close(mfd)
touch(j, [0]); report["memfd"] = [j, 2, [0]]
# an odd command name: stat must be parsed after the LAST ')'
libc.prctl(15, ctypes.cast(ctypes.c_char_p(b"odd) (name"), ctypes.c_void_p).value, 0, 0, 0)
'''
