"""`python -m classifiers.upgrade DIRECTORY`: add the compact form (model.npz) to a model
directory whose metadata has none (saved before the compact form existed, or the shipped
model after `python -m classifiers.train ship`), checked against its pipeline on the
packaged held-out set.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from classifiers.compact import CompactModel
from classifiers.export import differences
from classifiers.files import COMPACT_FILE, ModelError, add_compact, read_model
from classifiers.text import model_text
from classifiers.train import packaged_data, read_examples


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m classifiers.upgrade DIRECTORY`: write DIRECTORY/model.npz from its verified
    model.skops and record its sha256 in model.json (no other field changes), after checking
    it gives the same probabilities as the pipeline on the packaged held-out set."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m classifiers.upgrade MODEL_DIRECTORY", file=sys.stderr)
        return 2

    directory = Path(args[0])
    try:
        pipeline = read_model(directory).pipeline
        info = add_compact(directory)
    except (ModelError, OSError, ValueError) as exc:
        print(f"cannot write the compact model: {exc}", file=sys.stderr)
        return 1
    heldout = [model_text(e.subject, e.body) for e in read_examples(packaged_data("heldout"))]
    largest, differing = differences(CompactModel.load(directory / COMPACT_FILE), pipeline, heldout)
    print(
        f"{directory / COMPACT_FILE}: sha256 {info.compact_sha256} recorded in model.json; "
        f"on {len(heldout)} held-out messages: largest probability difference {largest:.2e}, "
        f"{differing} different labels"
    )
    return 0 if largest <= 1e-9 and differing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
