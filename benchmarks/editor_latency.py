"""Editor latency: time from a Generate call to the first streamed frame and to the final frame.

python -m benchmarks.editor_latency [--model FOLDER_OR_HUB_ID] [--sampler first_hitting|analytic|euler]
    [--steps 128] [--gap 64] [--repeats 3]
Serves the editor in-process on a free local port and drives `/generate` through gradio_client,
as a browser's click does, on an infill canvas (prefix + `gap` masked slots + suffix). Prints JSON.
"""
import argparse
import json
import socket
import statistics
import time

from gradio_client import Client

from app.ui import serve
from benchmarks.machine import describe
from sedd_core import SEDDPipeline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--sampler", default="first_hitting")
    p.add_argument("--steps", type=int, default=128, help="analytic and euler only")
    p.add_argument("--gap", type=int, default=64, help="masked slots between the prefix and the suffix")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    pipe = SEDDPipeline.from_pretrained(a.model, "cpu")
    demo = serve(pipe, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    client = Client(demo.local_url, verbose=False, download_files=False)
    canvas = client.predict("Once upon a time", " happily ever after.", a.gap, api_name="/preset_infill")
    firsts, finals, frames = [], [], []
    for seed in range(a.repeats):
        start = time.perf_counter()
        job = client.submit(canvas, a.sampler, a.steps, seed, 1, api_name="/generate")
        first, n = None, 0
        for _ in job:
            n += 1
            first = first if first is not None else time.perf_counter() - start
        job.result()
        finals.append(time.perf_counter() - start)
        firsts.append(first)
        frames.append(n)
    demo.close()
    print(json.dumps({
        "model": str(a.model or "bundled"), "slots": len(canvas), "sampler": a.sampler,
        "steps": a.steps if a.sampler != "first_hitting" else None, "repeats": a.repeats,
        "median_first_frame_s": round(statistics.median(firsts), 3), "median_final_frame_s": round(statistics.median(finals), 3),
        "frames_received": frames, "machine": describe("cpu"),
    }))


if __name__ == "__main__":
    main()
