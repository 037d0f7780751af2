"""Adversarial-input benchmark: does any text step slow down faster than its input grows?

    python -m bench.adversarial [--small 20000] [--factor 10]

Every pure step the daemon runs on a message a stranger wrote (parsing, loop detection,
classification, escalation and command reading, quote and signature stripping,
pseudonymisation, HTML reading) is fed inputs built to hurt regular expressions and
parsers: one trigger word repeated, endless quote markers, unclosed tags, lines with no
spaces. Each is timed at a small size and at `factor` times that size. A linear step takes
about `factor` times as long; a quadratic one `factor`² times. Prints one line per step and
input, the worst growth, then the figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

# What an attacker, a broken mail client or a looping autoresponder might send.
_PATTERNS: dict[str, Callable[[int], str]] = {
    "repeated trigger": lambda n: ("escalate " * n)[:n],
    "repeated refusal": lambda n: ("I do not want this escalated " * n)[:n],
    "quote markers": lambda n: (">\n" * n)[:n],
    "blank lines": lambda n: "x\n" + "\n" * n,
    "one long word": lambda n: "a" * n,
    "wrote lines": lambda n: ("On Mon, 1 Jan 2024, A wrote:\n" * n)[:n],
    "one long On line": lambda n: "On " + "a " * (n // 2),
    "header lines": lambda n: ("From: a\n" * n)[:n],
    "quoted blank lines": lambda n: ("> \n" * n)[:n],
    "signature dashes": lambda n: ("--\n" * n)[:n],
    "case references": lambda n: ("Case CAND-2024-00001 " * n)[:n],
    "addresses": lambda n: ("a.b@example.org " * n)[:n],
    "digits": lambda n: ("0123 456 789 " * n)[:n],
    "unclosed script": lambda n: ("<script " * n)[:n],
    "unclosed tags": lambda n: ("<a " * n)[:n],
    "commands": lambda n: ("#label hr\n" * n)[:n],
    "safeguarding words": lambda n: ("child abuse harm " * n)[:n],
    "dissatisfaction near-misses": lambda n: ("i want to make a formal " * n)[:n],
    "copies of records near-misses": lambda n: ("copies of all my very " * n)[:n],
    "words in no language": lambda n: ("zxq vbnmk qwrtp " * n)[:n],
}


def _mail(body: str, html: bool) -> bytes:
    message = EmailMessage()
    message["From"] = "Someone <someone@example.net>"
    message["To"] = "complaints@example.org"
    message["Subject"] = "A complaint"
    message["Message-ID"] = "<adversarial@example.net>"
    message.set_content(body, subtype="html" if html else "plain")
    return bytes(message)


def _steps(state_dir: Path) -> dict[str, Callable[[str], object]]:
    from classifiers.config import ClassifierConfig
    from classifiers.loader import load_classifier
    from classifiers.types import ClassifierInput
    from daemon.casework.commands import parse_staff_reply
    from daemon.casework.correspondence import staff_text as read_staff_text
    from daemon.casework.escalation import asks_for_escalation
    from daemon.casework.pseudonyms import scrub
    from daemon.mail.automatic import automatic_reason
    from daemon.mail.parse import html_to_text, parse_message

    classifier = load_classifier(state_dir, ClassifierConfig())  # as the daemon loads it
    own = frozenset({"complaints@example.org"})

    def parse_and_screen(text: str) -> object:
        return automatic_reason(parse_message(_mail(text, html=False)), own)

    def parse_html(text: str) -> object:
        return parse_message(_mail(text, html=True)).text

    parsed = parse_message(_mail("x", html=False))

    def staff_text(text: str) -> object:
        return read_staff_text(replace(parsed, text=text))

    return {
        "parse+screen": parse_and_screen,
        "parse html": parse_html,
        "html_to_text": html_to_text,
        "classify": lambda text: classifier.classify([ClassifierInput("A complaint", text)]),
        "escalation": asks_for_escalation,
        "staff commands": parse_staff_reply,
        "staff text": staff_text,
        "pseudonymise": lambda text: scrub(text, address="ab@example.net", display_name="A B"),
    }


def _time(step: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    step(text)
    return time.perf_counter() - started


def run(small: int, factor: int) -> dict[str, Any]:
    """Time every step on every pattern at `small` and `small * factor` characters."""
    with tempfile.TemporaryDirectory(prefix="candour-adversarial-") as state_dir:
        return _run(_steps(Path(state_dir)), small, factor)


def _run(steps: dict[str, Callable[[str], object]], small: int, factor: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for step_name, step in steps.items():
        step("warm-up")
        for pattern_name, make in _PATTERNS.items():
            short, long = make(small), make(small * factor)
            short_seconds = min(_time(step, short) for _ in range(3))
            long_seconds = _time(step, long)
            rows.append(
                {
                    "step": step_name,
                    "input": pattern_name,
                    "small_ms": round(short_seconds * 1000, 2),
                    "large_ms": round(long_seconds * 1000, 2),
                    "growth": round(long_seconds / max(short_seconds, 1e-6), 1),
                }
            )
            print(
                f"{step_name:15} {pattern_name:20} {rows[-1]['small_ms']:>9.2f} ms "
                f"{rows[-1]['large_ms']:>10.2f} ms  x{rows[-1]['growth']}",
                flush=True,
            )
    worst = max(rows, key=lambda r: r["large_ms"])
    return {
        "small_chars": small,
        "large_chars": small * factor,
        "factor": factor,
        "slowest": {k: worst[k] for k in ("step", "input", "large_ms", "growth")},
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000, help="characters in the small input")
    parser.add_argument(
        "--factor", type=int, default=10, help="how many times larger the large one"
    )
    args = parser.parse_args()
    print(f"{'step':15} {'input':20} {'small':>12} {'large':>13}  growth")
    figures = run(args.small, args.factor)
    slowest = figures["slowest"]
    print(
        f"slowest at {figures['large_chars']:,} chars: {slowest['step']} on "
        f"{slowest['input']}, {slowest['large_ms']} ms (x{slowest['growth']})"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
