"""Run inside `unshare -m` by test_full_disk.py: mount a small tmpfs, fill it, run
vmainspect against it, print one JSON line of results. (stdlib only)"""

import hashlib
import json
import os
import subprocess
import sys

mnt, pid, old_rec, old_snap = sys.argv[1:5]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", mnt], check=True)
with open(old_rec, "rb") as f:
    rec_bytes = f.read()
with open(old_snap, "rb") as f:
    snap_bytes = f.read()
for name, data in (("old.jsonl", rec_bytes), ("old.json", snap_bytes)):
    with open(os.path.join(mnt, name), "wb") as f:
        f.write(data)
# fill what is left, then free 8 KiB: room for a few lines, not for a snapshot (30 KB)
with open(os.path.join(mnt, "slack"), "wb") as f:
    f.write(b"s" * 8192)
try:
    with open(os.path.join(mnt, "filler"), "wb") as f:
        while True:
            f.write(b"f" * 4096)
            f.flush()
except OSError:
    pass
os.unlink(os.path.join(mnt, "slack"))


def cli(*args):
    r = subprocess.run(
        [sys.executable, "-m", "vmainspect", *args], capture_output=True, text=True, timeout=120, cwd="/"
    )
    return {"rc": r.returncode, "err": r.stderr}


def digest(name):
    try:
        with open(os.path.join(mnt, name), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


out = {
    "snapshot_new": cli("snapshot", pid, "-o", os.path.join(mnt, "new.json")),
    "snapshot_replace": cli("snapshot", pid, "-o", os.path.join(mnt, "old.json")),
    "record_force": cli(
        "record", pid, "-o", os.path.join(mnt, "old.jsonl"), "--force", "--duration", "3", "--interval", "0.1"
    ),
    "record_new": cli(
        "record", pid, "-o", os.path.join(mnt, "new.jsonl"), "--duration", "3", "--interval", "0.1"
    ),
    "old_rec_same": digest("old.jsonl") == hashlib.sha256(rec_bytes).hexdigest(),
    "old_snap_same": digest("old.json") == hashlib.sha256(snap_bytes).hexdigest(),
    "new_json": digest("new.json"),
    "files": sorted(os.listdir(mnt)),
}
print(json.dumps(out))
