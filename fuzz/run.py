"""The long fuzz run (`make fuzz FUZZ_ARGS="--examples 20000"`): figures, and reproducers.

    python -m fuzz.run [--examples 5000] [--seed 0] [--scale 200000] [--save DIR]
                       [--growth-size 50000] [--replay FILE...]

Draws `examples` mutants (fuzz.strategies) and runs each through fuzz.harness. Nothing
stops the run: it counts outcomes, exceptions caught at the daemon's per-message boundary
(by stage and type), exceptions that escaped it, invalid acknowledgements (by problem),
messages quarantined as unparseable that the standard library reads, and the slowest
message per KB. Every escape, invalid output and readable quarantine, and the first of
each kind caught, is written to `--save` as an .eml with its recipe beside it. Then each
growth shape (fuzz.growth) is timed at `growth-size` and ten times that. Exits 1 when
anything escaped, was invalid, was quarantined though readable, or grew more than 15
times (the known shapes are printed, not counted). `--replay` runs the given files
(reproducers) instead and prints what became of each.
"""

from __future__ import annotations

import argparse
import collections
import email
import email.policy
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from fuzz.growth import KNOWN, SHAPES, growth
from fuzz.harness import Escaped, Harness, daemon_stack
from fuzz.mutations import Mutant, seeds
from fuzz.strategies import mutants


@dataclass
class Figures:
    """What a fuzz run found (printed at its end)."""

    examples: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    caught: collections.Counter[str] = field(default_factory=collections.Counter)
    caught_first: dict[str, str] = field(default_factory=dict)  # a recipe for each kind
    # Quarantined as unparseable, though the standard library reads it: a person's mail lost
    # to a human queue for a fault in our parsing (tests/mail/fuzz/README.md has one).
    readable_quarantined: int = 0
    escaped: collections.Counter[str] = field(default_factory=collections.Counter)
    invalid: collections.Counter[str] = field(default_factory=collections.Counter)
    slowest: tuple[float, int, str] = (0.0, 0, "")  # seconds per KB, bytes, recipe
    saved: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        per_kb, size, recipe = self.slowest
        return {
            "examples": self.examples,
            "outcomes": dict(self.outcomes.most_common()),
            "caught_at_boundary": dict(self.caught.most_common()),
            "caught_first_recipe": self.caught_first,
            "quarantined_but_readable": self.readable_quarantined,
            "escaped": dict(self.escaped.most_common()),
            "invalid_outputs": dict(self.invalid.most_common()),
            "slowest_ms_per_kb": round(per_kb * 1000, 3),
            "slowest_bytes": size,
            "slowest_recipe": recipe,
            "saved": self.saved,
        }


def _recipe(mutant: Mutant) -> str:
    return f"{mutant.seed} | {' | '.join(mutant.steps)}"


def _readable(raw: bytes) -> bool:
    """Whether the standard library reads `raw` as mail with a From and some text."""
    try:
        with daemon_stack():
            message = email.message_from_bytes(raw, policy=email.policy.default)
            body = message.get_body(("plain", "html"))
            text = body.get_content() if body is not None else ""
        return bool(message["From"]) and bool(text.strip())
    except Exception:  # noqa: BLE001 - anything it cannot read is not readable
        return False


def _save(directory: Path, mutant: Mutant, why: str, figures: Figures) -> None:
    digest = hashlib.sha256(mutant.raw).hexdigest()[:12]
    path = directory / f"{digest}.eml"
    if path.exists():
        return
    path.write_bytes(mutant.raw)
    path.with_suffix(".txt").write_text(f"{why}\n{_recipe(mutant)}\n", encoding="utf-8")
    figures.saved.append(str(path))


def fuzz(
    harness: Harness, figures: Figures, examples: int, scale: int, save: Path, seed_value: int
) -> None:
    """Run `examples` mutants drawn from `seed_value`, adding what happened to `figures`."""

    @seed(seed_value)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # nothing fails, so nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    @given(mutants(seeds(), scale))
    def one(mutant: Mutant) -> None:
        figures.examples += 1
        if figures.examples % 500 == 0:
            print(f"... {figures.examples} examples", file=sys.stderr, flush=True)
        try:
            run = harness.process(mutant.raw)
        except Escaped as exc:
            figures.escaped[f"{exc.stage}:{type(exc.error).__name__}"] += 1
            _save(save, mutant, f"escaped {exc}", figures)
            return
        figures.outcomes[run.outcome.split(":")[0]] += 1
        if run.outcome == "quarantined:parse" and _readable(mutant.raw):
            figures.readable_quarantined += 1
            _save(save, mutant, f"quarantined but readable: {run.caught}", figures)
        if run.caught:
            figures.caught[run.caught] += 1
            if run.caught not in figures.caught_first:
                figures.caught_first[run.caught] = _recipe(mutant)
                _save(save, mutant, f"caught {run.caught}", figures)
        for problem in run.problems:
            figures.invalid[problem] += 1
        if run.problems:
            _save(save, mutant, f"invalid {run.problems}", figures)
        per_kb = run.seconds / max(1.0, run.size / 1024)
        if per_kb > figures.slowest[0]:
            # Once more: a first German message, say, loads a language model (once a run).
            per_kb = min(per_kb, harness.process(mutant.raw).seconds / max(1.0, run.size / 1024))
        if per_kb > figures.slowest[0]:
            figures.slowest = (per_kb, run.size, _recipe(mutant))

    one()


def replay(harness: Harness, paths: list[Path]) -> int:
    """What becomes of each file; 1 when any escapes the boundary or gets an invalid reply."""
    failed = 0
    for path in paths:
        try:
            run = harness.process(path.read_bytes())
        except Escaped as exc:
            print(f"{path}: escaped {exc}")
            failed += 1
            continue
        print(f"{path}: {run.outcome} {run.seconds:.3f} s problems={list(run.problems)}")
        failed += bool(run.problems)
    return 1 if failed else 0


def growths(harness: Harness, size: int) -> tuple[dict[str, float], int]:
    """Each shape's growth from `size` to 10x (printed); how many grew more than 15x."""
    seed = next(raw for name, raw in seeds() if name == "seeds/plain.eml")
    found = {}
    for name, shape in {**SHAPES, **KNOWN}.items():
        found[name] = round(growth(harness, seed, shape, size), 1)
        known = " (known)" if name in KNOWN else ""
        print(f"growth {name}: {found[name]}x for 10x the size{known}", flush=True)
    return found, sum(ratio >= 15 for name, ratio in found.items() if name not in KNOWN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=200_000, help="bytes a mutation may add")
    parser.add_argument("--save", type=Path, default=None, help="where reproducers go")
    parser.add_argument("--growth-size", type=int, default=50_000)
    parser.add_argument("--replay", type=Path, nargs="+", help="run these files, no fuzzing")
    args = parser.parse_args(argv)
    save = args.save or Path(tempfile.mkdtemp(prefix="candour-fuzz-"))
    save.mkdir(parents=True, exist_ok=True)

    from classifiers.config import ClassifierConfig
    from classifiers.loader import load_classifier

    harness = Harness(load_classifier(Path(tempfile.mkdtemp()), ClassifierConfig()))
    harness.warm([raw for name, raw in seeds() if name.startswith("seeds/")])
    if args.replay:
        return replay(harness, args.replay)
    figures = Figures()
    started = time.perf_counter()
    fuzz(harness, figures, args.examples, args.scale, save, args.seed)
    took = time.perf_counter() - started
    report = figures.as_dict()
    print(f"seeds: {len(seeds())}, examples run: {figures.examples} in {took:.0f} s")
    for key, value in report.items():
        print(f"{key}: {value}")
    report["growth"], superlinear = growths(harness, args.growth_size)
    print(json.dumps(report))
    failed = figures.escaped or figures.invalid or figures.readable_quarantined or superlinear
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
