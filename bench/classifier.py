"""Classifier benchmark: batch classification speed on one core, model load time, file size.

    python -m bench.classifier [--messages N]

Measures the shipped model end to end as the daemon uses it (text preparation, features,
calibrated model, safety net), in batches of the daemon's default size. Prints one line per
figure, then the figures as one JSON object on the last line (read by bench.run).
"""

from __future__ import annotations

import os

# One core means one thread too: set before numpy/scipy start their thread pools.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402


def _pin_to_one_core() -> int | None:
    """Run on the first CPU this process may use; returns it (None where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def run(messages: int, batch_size: int) -> dict[str, Any]:
    """Return the figures: msgs/s (wall and CPU), load seconds, model file size."""
    cpu = _pin_to_one_core()
    started = time.perf_counter()
    # What the daemon's preparer process imports and loads: the compact model (numpy only).
    from classifiers.files import COMPACT_FILE, read_predictor
    from classifiers.predict import ModelClassifier
    from classifiers.safety import SafetyNet, shipped_rules
    from classifiers.store import shipped_dir
    from classifiers.types import ClassifierInput

    imported = time.perf_counter()
    loaded = read_predictor(shipped_dir())
    load_seconds = time.perf_counter() - imported
    classifier = ModelClassifier(
        loaded.predictor, loaded.info.version, SafetyNet(shipped_rules()), 0.5
    )
    ready_seconds = time.perf_counter() - started
    from classifiers.train import packaged_data, read_examples  # scikit-learn: not timed

    examples = read_examples(packaged_data("train")) + read_examples(packaged_data("heldout"))
    inputs = [ClassifierInput(e.subject, e.body) for e in examples]
    corpus = (inputs * (messages // len(inputs) + 1))[:messages]
    classifier.classify(corpus[:batch_size])  # warm-up: first-call allocations, caches

    wall, cpu_time = time.perf_counter(), time.process_time()
    for start in range(0, len(corpus), batch_size):
        classifier.classify(corpus[start : start + batch_size])
    wall, cpu_time = time.perf_counter() - wall, time.process_time() - cpu_time
    return {
        "model_version": loaded.info.version,
        "cpu": cpu,
        "messages": len(corpus),
        "batch_size": batch_size,
        "msgs_per_second": round(len(corpus) / wall, 1),
        "msgs_per_cpu_second": round(len(corpus) / cpu_time, 1),
        "model_load_seconds": round(load_seconds, 3),
        "import_and_load_seconds": round(ready_seconds, 3),
        "compact_model": loaded.compact,
        "model_file_bytes": (shipped_dir() / COMPACT_FILE).stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=200)  # daemon.batch_size default
    args = parser.parse_args()
    figures = run(args.messages, args.batch_size)
    print(f"model {figures['model_version']} on CPU {figures['cpu']}")
    print(
        f"batch classification: {figures['msgs_per_second']:.0f} msgs/s "
        f"({figures['msgs_per_cpu_second']:.0f} per CPU-second), "
        f"{figures['messages']} messages in batches of {figures['batch_size']}"
    )
    print(
        f"model load: {figures['model_load_seconds']:.3f} s "
        f"(with imports {figures['import_and_load_seconds']:.3f} s)"
    )
    print(f"model file: {figures['model_file_bytes'] / 1e6:.1f} MB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
