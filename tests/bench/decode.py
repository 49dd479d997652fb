"""Decode cost per message, frame by frame vs one batch per socket read (a script, not a test),
run by path.

``python tests/bench/decode.py [--frames N] [--repeats R]`` decodes the same pre-built frames,
compact bookTicker frames of 4 streams in turn with rising ``u`` (what Binance and the
simulator send), once with ``BinanceCodec.decode`` per frame (the reader before
``decode_batch``) and once with ``decode_batch`` on batches of 4, 8, 16, 64 and 256 frames (1, 2,
4, 16 and 64 frames per stream per socket read). Prints µs per message for each, the ratio
per-frame / batch, and the machine: CPU count, load average, Python.

Decisions:

* Both paths decode the same frames with a fresh codec per repeat, so the sequence filter
  accepts every frame in both (none is dropped early) and the per-frame figure includes
  building every ``Ticker``, as the reader did.
* Batch 4 is below the codec's ``look_ahead_from``: decoded frame by frame, it shows what the
  batch entry point costs on its own. Batch 8, two frames per stream, is the smallest batch
  that looks ahead.
* The paths are run in turn, ``--repeats`` rounds, and the best run of each is reported: the
  least disturbed by other processes, under the same conditions for every path; the load
  average says how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors.exchanges.binance import BinanceCodec
from actors.messages import Stream

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
BATCH_SIZES = (4, 8, 16, 64, 256)


def build_frames(count: int) -> list[str]:
    frames = []
    for i in range(count):
        native = SYMBOLS[i % len(SYMBOLS)].replace("/", "")
        bid = 25_000_000 + (i * 7919) % 10_000  # in 1e-4 units, so prices vary
        frames.append(
            f'{{"stream":"{native.lower()}@bookTicker","data":{{"u":{400_900_217 + i},'
            f'"s":"{native}","b":"{bid / 10_000:.8f}","B":"31.21000000",'
            f'"a":"{(bid + 13) / 10_000:.8f}","A":"40.66000000"}}}}'
        )
    return frames


def new_codec() -> BinanceCodec:
    codec = BinanceCodec()
    codec.subscribe_messages([Stream("ticker", symbol) for symbol in SYMBOLS])
    return codec


def timed(run: Callable[[BinanceCodec], None]) -> float:
    codec = new_codec()
    started = time.perf_counter()
    run(codec)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8_192)
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    frames = build_frames(args.frames)
    received_ts = time.time()

    def per_frame(codec: BinanceCodec) -> None:
        decode = codec.decode
        for frame in frames:
            decode(frame, received_ts)

    def batched(size: int) -> Callable[[BinanceCodec], None]:
        batches = [frames[i : i + size] for i in range(0, len(frames), size)]

        def run(codec: BinanceCodec) -> None:
            decode_batch = codec.decode_batch
            for batch in batches:
                decode_batch(batch, received_ts)

        return run

    runs: dict[str, Callable[[BinanceCodec], None]] = {"per-frame": per_frame}
    runs.update({f"batch {size}": batched(size) for size in BATCH_SIZES})
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeats):  # interleaved, so that every path sees the same load
        for name, run in runs.items():
            best[name] = min(best[name], timed(run))

    load = os.getloadavg()
    print(
        f"cpus {os.cpu_count()}  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}  "
        f"python {platform.python_version()}  frames {len(frames)}, best of {args.repeats}"
    )
    single = best["per-frame"] / len(frames) * 1e6
    print(f"per-frame decode             {single:6.2f} µs/message")
    for size in BATCH_SIZES:
        cost = best[f"batch {size}"] / len(frames) * 1e6
        per_stream = size // len(SYMBOLS)
        print(
            f"decode_batch of {size:3} ({per_stream:2}/stream) {cost:6.2f} µs/message"
            f"   per-frame / batch {single / cost:5.1f}x"
        )


if __name__ == "__main__":
    main()
