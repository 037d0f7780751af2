"""The safeguarding safety net: rules and a low probability threshold, on top of the model.

Whatever label the model gives, a message is flagged `safeguarding` when any rule matches
or the model's safeguarding probability reaches SAFEGUARDING_PROBABILITY. Rules are data
(classifiers/rules/safeguarding.toml, extendable by ClassifierConfig.extra_rules), not code.
There is deliberately no negation handling: "this is not a safeguarding matter, but..."
must never hide what follows, so a false alarm is the accepted price.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from classifiers.patterns import PatternSet

# Recall matters more than precision: a missed disclosure costs far more than a second look.
SAFEGUARDING_PROBABILITY = 0.15
MODEL_REASON = "model-probability"
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_QUOTE_MARKS = re.compile(r"(?m)^[ \t]*(?:>[ \t]?)+")
_SPACES = re.compile(r"\s+")
_ESCAPE = re.compile(r"\\.")
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
# Apostrophes are dropped ("don't" -> "dont") so patterns need not guess which was typed.
_APOSTROPHES = str.maketrans(dict.fromkeys("'\u2019\u2018\u02bc`", None))


class RulesError(Exception):
    """A rules file cannot be used; the message names the file, the rule and the problem."""


@dataclass(frozen=True)
class Rule:
    """One risk indicator: any of its patterns matching raises the flag."""

    id: str
    why: str
    patterns: tuple[str, ...]
    source: str


def normalise(text: str) -> str:
    """Return `text` as rules see it: lower case, no apostrophes, quote marks removed,
    every run of whitespace (line breaks included) one space."""
    text = _QUOTE_MARKS.sub(" ", text.translate(_APOSTROPHES))
    return _SPACES.sub(" ", text).lower()


def parse_rules(document: str, source: str) -> tuple[Rule, ...]:
    """Parse a rules TOML document. Raises RulesError naming `source` and the rule."""
    try:
        data = tomllib.loads(document)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"rule"}
    if unknown:
        raise RulesError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RulesError(f"{source}: expected one or more [[rule]] tables")
    rules = []
    for index, raw in enumerate(raw_rules):
        where = f"{source}: rule[{index}]"
        if not isinstance(raw, dict):
            raise RulesError(f"{where}: must be a table")
        extra = set(raw) - {"id", "why", "patterns"}
        if extra:
            raise RulesError(f"{where}: unknown key(s) (typo?): {', '.join(sorted(extra))}")
        rule_id, why, patterns = raw.get("id"), raw.get("why", ""), raw.get("patterns")
        if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
            raise RulesError(f"{where}: id must be lower-case letters, digits and hyphens")
        where = f"{source}: rule {rule_id!r}"
        if not isinstance(why, str):
            raise RulesError(f"{where}: why must be a string")
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and p.strip() for p in patterns)
        ):
            raise RulesError(f"{where}: patterns must be a non-empty list of strings")
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise RulesError(f"{where}: bad pattern {pattern!r}: {exc}") from exc
            if compiled.groupindex or compiled.flags & ~re.UNICODE:
                raise RulesError(
                    f"{where}: pattern {pattern!r} must not use named groups or inline flags"
                )
            if _BACKREFERENCE.search(pattern):
                raise RulesError(f"{where}: pattern {pattern!r} must not use backreferences")
            if _ESCAPE.sub("", pattern) != _ESCAPE.sub("", pattern).lower():
                raise RulesError(
                    f"{where}: pattern {pattern!r} has capitals; text is matched in lower case"
                )
            if compiled.search(""):
                raise RulesError(f"{where}: pattern {pattern!r} matches empty text")
        rules.append(Rule(rule_id, why, tuple(patterns), source))
    return tuple(rules)


def shipped_rules() -> tuple[Rule, ...]:
    """Return the rules shipped in the package. Raises RulesError if the file is broken."""
    path = resources.files("classifiers") / "rules" / "safeguarding.toml"
    return parse_rules(path.read_text(encoding="utf-8"), "classifiers/rules/safeguarding.toml")


def load_rules(extra: Path | None = None) -> tuple[Rule, ...]:
    """Return the shipped rules plus those in `extra`. Raises RulesError (unreadable or
    invalid file, or an extra rule reusing a shipped id: extra rules add, never replace)."""
    rules = shipped_rules()
    if extra is None:
        return rules
    try:
        document = extra.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{extra}: cannot be read ({exc})") from exc
    added = parse_rules(document, str(extra))
    ids = [r.id for r in rules + added]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RulesError(f"{extra}: rule id(s) already defined: {', '.join(repeated)}")
    return rules + added


class SafetyNet:
    """Decides whether a message carries a safeguarding risk indicator, and why.

    Every rule pattern is run, in about one pass over the text (classifiers.patterns).
    """

    def __init__(
        self, rules: tuple[Rule, ...], probability: float = SAFEGUARDING_PROBABILITY
    ) -> None:
        self.rules = rules
        self.probability = probability
        self._patterns = PatternSet(
            (rule.id, pattern) for rule in rules for pattern in rule.patterns
        )

    def rule_hits(self, text: str) -> tuple[str, ...]:
        """Return the ids of the rules that match `text`, in rule order."""
        return self._patterns.hits(normalise(text))

    def reasons(self, text: str, safeguarding_probability: float) -> tuple[str, ...]:
        """Return why the message is flagged (rule ids, then "model-probability"); empty
        when it is not."""
        hits = self.rule_hits(text)
        if safeguarding_probability >= self.probability:
            return (*hits, MODEL_REASON)
        return hits
