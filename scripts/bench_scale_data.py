#!/usr/bin/env python3
"""Test data and measurements for scripts/bench-scale.sh (issue 22); the data is deterministic.

  bench_scale_data.py models DIR COUNT      COUNT small distinct model files under DIR (ComfyUI folders)
  bench_scale_data.py workflow FILE MB      one UI-format workflow of about MB megabytes
  bench_scale_data.py workflows DIR COUNT   COUNT small workflows (for the many-files case)
  bench_scale_data.py bundle FILE COUNT MB  an export bundle with COUNT empty workflows and one dev-node
                                            file of MB megabytes of zeros (streamed into the gzip stream)
  bench_scale_data.py devnode DIR MB        a dev node of about MB megabytes: Python sources (a tenth)
                                            and one weights file (half-compressible noise)
  bench_scale_data.py time RUNS CMD...      best and median wall time of CMD (stdout discarded), and
                                            the peak RSS of the best run
  bench_scale_data.py time-to-error RUNS CMD...  the same for a CMD expected to fail (exit status ignored)
  bench_scale_data.py time-prepared RUNS PREP CMD...  the same, running the shell command PREP (untimed)
                                            before each run
  bench_scale_data.py edit DIR              edits every workflow in DIR (new bytes and content each time)
  bench_scale_data.py time-self[-to-error] RUNS CMD...  the same, with the peak RSS of CMD's own process
                                            (its VmHWM; children such as git or uv left out)
  bench_scale_data.py first-line CMD...     seconds until CMD prints its first line on stdout, and in all
  bench_scale_data.py written TRACE NAME    bytes an `strace -y` log shows written to files whose name
                                            starts with NAME
"""
import hashlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import time

FOLDERS = ["checkpoints", "loras", "vae", "diffusion_models", "text_encoders", "controlnet", "upscale_models", "embeddings"]


def models(root, count):
    made = set()
    for i in range(count):
        folder = FOLDERS[i % len(FOLDERS)]
        sub = os.path.join(root, folder, f"set{i // 1000:03d}")
        if sub not in made:
            os.makedirs(sub, exist_ok=True)
            made.add(sub)
        # 200-1,200 bytes of content unique to the file.
        body = (f"model {i} ".encode() * 120)[: 200 + (i * 37) % 1000]
        with open(os.path.join(sub, f"model_{i:06d}_v{i % 7}.safetensors"), "wb") as out:
            out.write(body)


def node(i, links_in, links_out, kind):
    return {
        "id": i,
        "type": kind,
        "pos": [i * 10.5, i * 3.25],
        "size": [315, 262],
        "flags": {},
        "order": i,
        "mode": 0,
        "inputs": [{"name": "model", "type": "MODEL", "link": links_in}],
        "outputs": [{"name": "LATENT", "type": "LATENT", "links": [links_out], "slot_index": 0}],
        "properties": {"Node name for S&R": kind, "cnr_id": "comfy-core", "ver": "0.3.77"},
        "widgets_values": [i * 7919 % 1000003, "randomize", 20, 8.0, "euler", "normal", 1.0,
                           f"prompt text number {i}: a detailed photograph of a mountain lake at dawn"],
    }


def workflow(path, megabytes, seed_kinds=("KSampler", "CLIPTextEncode", "VAEDecode", "LoraLoader")):
    target = megabytes * 1024 * 1024
    nodes, links = [], []
    size, i = 0, 1
    while size < target:
        kind = seed_kinds[i % len(seed_kinds)]
        nodes.append(node(i, i - 1 if i > 1 else None, i, kind))
        if i > 1:
            links.append([i - 1, i - 1, 0, i, 0, "MODEL"])
        size += 580
        i += 1
    nodes.append({
        "id": i, "type": "CheckpointLoaderSimple", "pos": [0, 0], "size": [315, 98], "flags": {}, "order": 0,
        "mode": 0, "inputs": [], "outputs": [], "properties": {"Node name for S&R": "CheckpointLoaderSimple"},
        "widgets_values": ["sd_xl_base_1.0.safetensors"],
    })
    document = {"id": "bench", "revision": 0, "last_node_id": i, "last_link_id": i - 1,
                "nodes": nodes, "links": links, "groups": [], "config": {}, "extra": {}, "version": 0.4}
    with open(path, "w") as out:
        json.dump(document, out)


def workflows(root, count):
    os.makedirs(root, exist_ok=True)
    for n in range(count):
        nodes = [node(i, i - 1 if i > 1 else None, i, "KSampler") for i in range(1, 12 + n % 20)]
        nodes.append({"id": 99, "type": "CheckpointLoaderSimple", "inputs": [], "outputs": [],
                      "widgets_values": [f"model_{n % 50:06d}.safetensors"], "mode": 0})
        document = {"last_node_id": 99, "last_link_id": 0, "nodes": nodes, "links": [], "version": 0.4}
        with open(os.path.join(root, f"workflow_{n:04d}.json"), "w") as out:
            json.dump(document, out)


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def bundle(path, count, megabytes):
    """A format-1 export bundle pinned to a ComfyUI commit that does not exist (import stops there)."""
    pin = "[tool.comfydock]\ntorch_backends = ['cpu']\n\n[tool.comfydock.comfyui]\nref = 'v0.3.40'\ncommit = '" + "0" * 40 + "'\n"
    lock = ("version = 1\n\n[[package]]\nname = 'x'\nversion = '0.0.0'\nsource = { virtual = '.' }\n\n"
            "[package.optional-dependencies]\ncpu = [{ name = 'torch', version = '2.5.1+cpu', "
            "source = { registry = 'http://127.0.0.1:9/whl/cpu' } }]\n")
    small = {"pyproject.toml": ("[project]\nname = 'x'\n" + pin).encode(), "uv.lock": lock.encode()}
    small.update({f"workflows/w{n:06d}.json": b"" for n in range(count)})
    large = megabytes << 20
    digest = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(megabytes):
        digest.update(block)
    files = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in small.items()}
    files["dev_nodes/blob/weights.bin"] = {"sha256": digest.hexdigest(), "size": large}
    manifest = json.dumps({"format_version": 1, "comfydock_version": "0.1.0", "created_at": "2026-01-01T00:00:00Z",
                           "environment_name": "bench", "platform": "linux-x86_64", "python": "3.12",
                           "comfyui": {"reference": "v0.3.40", "commit": "0" * 40}, "torch_backend": "cpu",
                           "torch_backends": ["cpu"], "cec_commit": "0" * 40,
                           "counts": {"workflows": count, "registry_nodes": 0, "git_nodes": 0, "dev_nodes": 0, "models": 0},
                           "models": [], "files": files}).encode()
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT, compresslevel=1) as tar:
        for name, data in [("manifest.json", manifest)] + list(small.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("dev_nodes/blob/weights.bin")
        info.size = large
        tar.addfile(info, io.BufferedReader(Zeros(large), 1 << 20))


def devnode(root, megabytes):
    import random
    rng = random.Random(22)
    os.makedirs(os.path.join(root, "nodes"), exist_ok=True)
    with open(os.path.join(root, "__init__.py"), "w") as out:
        out.write("NODE_CLASS_MAPPINGS = {}\n")
    source_mb = max(megabytes // 10, 1)
    for n in range(source_mb * 10):
        lines = [f"def function_{n}_{i}(x, y={i}):\n    return x * y + {rng.randrange(10**6)}  # step {i}\n"
                 for i in range(1200)]
        with open(os.path.join(root, "nodes", f"module_{n:04d}.py"), "w") as out:
            out.write("".join(lines)[: 100 * 1024])
    # Sixteen symbols per byte: about half the size once compressed, like quantised weights.
    table = bytes(b & 0x0F for b in range(256))
    with open(os.path.join(root, "weights.bin"), "wb") as out:
        for _ in range(megabytes - source_mb):
            out.write(rng.randbytes(1 << 20).translate(table))


def run_once(command, check=True):
    """Wall seconds and peak RSS (KiB, from GNU time: a fork of this Python would report its own)."""
    rss_file = f"/tmp/bench-scale-rss.{os.getpid()}"
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        status = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss_file, *command], stdout=null)
    elapsed = time.perf_counter() - start
    if check and status != 0:
        sys.exit(f"`{' '.join(command)}` failed ({status})")
    with open(rss_file) as rss:
        peak = int(rss.read().split()[-1])
    os.remove(rss_file)
    return elapsed, peak


def run_once_self(command, check=True):
    """Wall seconds and the peak RSS (KiB) of CMD's own process, children (git, uv) left out:
    its VmHWM, a high-water mark, read every few milliseconds until it exits."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        process = subprocess.Popen(command, stdout=null)
        peak = 0
        while process.poll() is None:
            try:
                with open(f"/proc/{process.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
            time.sleep(0.005)
    elapsed = time.perf_counter() - start
    if check and process.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed ({process.returncode})")
    return elapsed, peak


def edit(root):
    token = time.time_ns()
    for name in sorted(os.listdir(root)):
        if name.endswith(".json"):
            path = os.path.join(root, name)
            with open(path) as source:
                document = json.load(source)
            document.setdefault("extra", {})["bench_edit"] = token
            with open(path, "w") as out:
                json.dump(document, out)


def timed(runs, command, check=True, measure=run_once, prepare=None):
    def once():
        if prepare:
            subprocess.run(prepare, shell=True, check=True)
        return measure(command, check)

    results = sorted(once() for _ in range(runs))
    best, rss = results[0]
    median = statistics.median(r[0] for r in results)
    print(f"{best:.4f} {median:.4f} {rss}")


def first_line(command):
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    process.stdout.readline()
    first = time.perf_counter() - start
    for _ in process.stdout:
        pass
    process.wait()
    print(f"{first:.4f} {time.perf_counter() - start:.4f}")


def written(trace, name):
    total = 0
    pattern = re.compile(r"p?write(?:64|v|v2)?\(\d+<([^>]*)>.*= (\d+)$")
    for line in open(trace):
        match = pattern.search(line)
        if match and os.path.basename(match.group(1)).startswith(name):
            total += int(match.group(2))
    print(total)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "time":
        timed(int(sys.argv[2]), sys.argv[3:])
    elif what == "time-prepared":
        timed(int(sys.argv[2]), sys.argv[4:], prepare=sys.argv[3])
    elif what == "edit":
        edit(sys.argv[2])
    elif what == "time-to-error":
        timed(int(sys.argv[2]), sys.argv[3:], check=False)
    elif what == "time-self":
        timed(int(sys.argv[2]), sys.argv[3:], measure=run_once_self)
    elif what == "time-self-to-error":
        timed(int(sys.argv[2]), sys.argv[3:], check=False, measure=run_once_self)
    elif what == "bundle":
        bundle(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif what == "first-line":
        first_line(sys.argv[2:])
    elif what == "written":
        written(sys.argv[2], sys.argv[3])
    else:
        {"models": models, "workflow": workflow, "workflows": workflows, "devnode": devnode}[what](sys.argv[2], int(sys.argv[3]))
