"""Does a heavy import stall other visitors? `python -m benchmarks.import_stall [--repeats 8]`.

Serves the editor on the bundled model, then times one visitor's `/score` alone and while another
visitor imports, over and over, a file as large as the editor accepts (its upload cap: the largest run
it exports), which parses and is refused by the checks. Prints the medians and the cap.
"""
import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app.events import Editor
from app.ui import serve
from benchmarks.machine import describe
from sedd_core import SEDDPipeline

from .editor_latency import free_port


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=8)
    a = p.parse_args()
    pipe = SEDDPipeline.from_pretrained()
    demo = serve(pipe, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    cap = Editor(pipe).max_import_bytes
    big = Path(tempfile.mkdtemp()) / "big.json"
    big.write_text(json.dumps({"format": "sedd-run/1", "frames": [[1234567] * 1000] * ((cap - 2000) // 9000)}))
    importer, visitor = Client(demo.local_url, verbose=False), Client(demo.local_url, verbose=False)

    def score_seconds():
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            visitor.predict("Once upon a time there was a river.", 64, 0, api_name="/score")
            times.append(time.perf_counter() - start)
        return times

    alone, busy = score_seconds(), threading.Event()

    def imports():
        while not busy.is_set():
            try:
                importer.predict(handle_file(str(big)), api_name="/import")
            except AppError:  # each import is refused, as it should be
                pass
    thread = threading.Thread(target=imports)
    thread.start()
    time.sleep(1)
    during = score_seconds()
    busy.set()
    thread.join()
    demo.close()
    print(json.dumps({"upload_cap_MiB": round(cap / 2**20, 2), "file_MiB": round(big.stat().st_size / 2**20, 2),
                      "score_alone_median_s": round(statistics.median(alone), 3),
                      "score_during_imports_median_s": round(statistics.median(during), 3),
                      "score_during_imports_max_s": round(max(during), 3), "machine": describe("cpu")}))


if __name__ == "__main__":
    main()
