"""The safeguarding safety net: rules and a low probability threshold, on top of the model.

Whatever label the model gives, a message is flagged `safeguarding` when any rule matches
or the model's safeguarding probability reaches SAFEGUARDING_PROBABILITY. Rules are data
(classifiers/rules/safeguarding.toml, extendable by ClassifierConfig.extra_rules), not code.
There is deliberately no negation handling: "this is not a safeguarding matter, but..."
must never hide what follows, so a false alarm is the accepted price.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

# Recall matters more than precision: a missed disclosure costs far more than a second look.
SAFEGUARDING_PROBABILITY = 0.15
MODEL_REASON = "model-probability"
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_QUOTE_MARKS = re.compile(r"(?m)^[ \t]*(?:>[ \t]?)+")
_SPACES = re.compile(r"\s+")
_ESCAPE = re.compile(r"\\.")
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")
# The regex parser is private (re._parser); if it changes, every pattern simply runs on
# every message (slower, never less safe).
try:
    _sre: Any = importlib.import_module("re._parser")
    _sre_op: Any = importlib.import_module("re._constants")
except ImportError:  # pragma: no cover - other Python versions
    _sre = _sre_op = None
_MAX_PREFIXES = 256
_MIN_PREFIX = 2
# Longer prefixes hardly narrow the candidates further but make the trigger regex (and the
# time to compile it) much bigger.
_MAX_PREFIX = 8
_WORDY = re.compile(r"\w")
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


def _literal_run(items: list[Any]) -> tuple[set[str] | None, bool]:
    """Expand the leading literals of a parsed regex sequence into the strings a match
    starts with; returns (strings or None when unknown, whether the sequence was consumed
    entirely). Alternatives and non-capturing groups of literals are expanded."""
    found = {""}
    for op, av in items:
        if op is _sre_op.LITERAL:
            found = {prefix + chr(av) for prefix in found}
            continue
        if op is _sre_op.SUBPATTERN and not av[1] and not av[2]:
            inner, whole = _alternatives([av[3]])
        elif op is _sre_op.BRANCH:
            inner, whole = _alternatives(av[1])
        elif op is _sre_op.IN and len(av) <= 4 and all(o is _sre_op.LITERAL for o, _ in av):
            inner, whole = {chr(v) for _, v in av}, True
        elif op in (_sre_op.MAX_REPEAT, _sre_op.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            inner, whole = _alternatives([av[2]])  # (?:x)? is "x" or nothing
            inner = None if inner is None else inner | {""}
        else:
            return found, False
        if inner is None:
            return found, False
        extended = {prefix + tail for prefix in found for tail in inner}
        if len(extended) > _MAX_PREFIXES:
            return found, False
        found = extended
        if not whole:
            return found, False
    return found, True


def _alternatives(branches: Iterable[Any]) -> tuple[set[str] | None, bool]:
    found: set[str] = set()
    whole = True
    for branch in branches:
        strings, consumed = _literal_run(list(branch))
        if strings is None:
            return None, False
        found |= strings
        whole = whole and consumed
        if len(found) > _MAX_PREFIXES:
            return None, False
    return found, whole


def literal_prefixes(pattern: str) -> frozenset[str] | None:
    """Return strings one of which starts every match of `pattern` (after leading `\\b`),
    or None when there is no such small set (the pattern is then tried everywhere)."""
    if _sre is None:
        return None
    try:
        items = list(_sre.parse(pattern))
        while items and items[0][0] is _sre_op.AT:
            items.pop(0)
        found, _ = _literal_run(items)
    except Exception:  # noqa: BLE001 - an unexpected parse shape only costs speed
        return None
    if not found or any(len(prefix) < _MIN_PREFIX for prefix in found):
        return None
    return frozenset(prefix[:_MAX_PREFIX] for prefix in found)


def _trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of `words`, shaped as a trie so each position costs one path;
    greedy, so it reports the longest word that matches at a position."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(c) + build(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def _candidates(table: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
    """For each prefix, the patterns to try where it is found. A trie scan reports the
    longest prefix at a position; every shorter prefix of it matched there too."""
    return {
        word: tuple(sorted({i for n in range(1, len(word) + 1) for i in table.get(word[:n], ())}))
        for word in table
    }


class SafetyNet:
    """Decides whether a message carries a safeguarding risk indicator, and why.

    Every rule pattern is run, but cheaply: one pass finds where the literal words that
    patterns start with occur, and each pattern is then tried only at those positions.
    Patterns without such words are searched in full.
    """

    def __init__(
        self, rules: tuple[Rule, ...], probability: float = SAFEGUARDING_PROBABILITY
    ) -> None:
        self.rules = rules
        self.probability = probability
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        self._everywhere: list[int] = []
        starts: dict[str, list[int]] = {}
        word_starts: dict[str, list[int]] = {}
        for rule in rules:
            for pattern in rule.patterns:
                index = len(self._patterns)
                self._patterns.append((rule.id, re.compile(pattern)))
                prefixes = literal_prefixes(pattern)
                if prefixes is None:
                    self._everywhere.append(index)
                    continue
                # A pattern that starts with \b and a word character can only match at the
                # start of a word: its prefixes are looked for there only ("he" not in "the").
                at_word = pattern.startswith("\\b") and all(_WORDY.match(p) for p in prefixes)
                for prefix in prefixes:
                    (word_starts if at_word else starts).setdefault(prefix, []).append(index)
        self._scans = [
            (re.compile(f"{anchor}(?=({_trie_regex(table)}))"), _candidates(table))
            for anchor, table in ((r"\b", word_starts), ("", starts))
            if table
        ]

    def rule_hits(self, text: str) -> tuple[str, ...]:
        """Return the ids of the rules that match `text`, in rule order."""
        text = normalise(text)
        hits: set[str] = set()
        for scan, candidates in self._scans:
            for found in scan.finditer(text):
                position = found.start()
                for index in candidates[found.group(1)]:
                    rule_id, pattern = self._patterns[index]
                    if rule_id not in hits and pattern.match(text, position):
                        hits.add(rule_id)
        for index in self._everywhere:
            rule_id, pattern = self._patterns[index]
            if rule_id not in hits and pattern.search(text):
                hits.add(rule_id)
        return tuple(rule.id for rule in self.rules if rule.id in hits)

    def reasons(self, text: str, safeguarding_probability: float) -> tuple[str, ...]:
        """Return why the message is flagged (rule ids, then "model-probability"); empty
        when it is not."""
        hits = self.rule_hits(text)
        if safeguarding_probability >= self.probability:
            return (*hits, MODEL_REASON)
        return hits
