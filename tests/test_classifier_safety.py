"""The safeguarding safety net: rules fire on risk in many phrasings, negation never hides a
disclosure, admins can extend the rules, and the fast matcher equals a plain search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.config import ClassifierConfig
from classifiers.loader import load_classifier
from classifiers.safety import (
    MODEL_REASON,
    RulesError,
    SafetyNet,
    load_rules,
    normalise,
    shipped_rules,
)
from daemon.config import Config, ConfigError, parse_config
from daemon.mailbox.preparer import make_preparer

_SHIPPED = SafetyNet(shipped_rules())


@pytest.fixture(scope="module")
def net() -> SafetyNet:
    return _SHIPPED


# Written for this test (not taken from the training data); none says "safeguarding".
DISCLOSURES = [
    "I have had enough. I've put all my tablets in a jar and I'm going to take them tonight.",
    "Honestly everyone would be better off without me, I keep thinking about ending it all.",
    "My son has been cutting himself, I found the blades in his pencil case.",
    "My ex turned up at 3am and said he'd kill me if I go to the police.",
    "Our neighbour's toddler was left on his own all weekend, we could hear him crying.",
    "The kids next door are always hungry, they come round asking for food most nights.",
    "The swimming coach keeps messaging my daughter on Instagram late at night.",
    "One of your youth leaders told my 13 year old to keep their chats a secret.",
    "A man in the chat asked my son to send him photos and not tell his parents.",
    "My mum's carer has been taking money out of her purse and she's too scared to say.",
    "Dad was found lying on the floor at 6am; the night carer never turned up.",
    "My sister's husband hits her and she has bruises on her arms she says are from the gym.",
    "Since my partner moved in he controls my money and won't let me see my friends.",
    "She told me her stepdad comes into her bedroom at night when mum is at work.",
    "My friend's boss keeps her passport and says she owes him for the flight.",
    "Our 15 year old has been staying out until 3am and getting into cars with older men.",
    "The teaching assistant grabbed my son by the arm and dragged him across the room.",
    "My brother has a learning disability and has gone missing, his phone is off.",
    "I'm frightened of going home tonight, he's been drinking and smashing things.",
    "A resident was left sitting in a soiled bed all night on the dementia unit.",
    "He said if I leave him he will burn the house down with me in it.",
    "My daughter is being forced to marry a man she has never met next month.",
]

NEGATED = [
    "This is not a safeguarding matter, but my neighbour's little girl was left home alone "
    "for two days last week.",
    "I'm not saying anyone is being abused. It's just that her dad hits her when he's drunk.",
    "Not a complaint and nothing serious: I just don't want to be alive anymore.",
    "No need to worry about safety, the coach only asked my son to keep it our secret.",
]

ROUTINE = [
    "The bin men missed our road again this week and the recycling is overflowing.",
    "Thank you to the reception team, they were lovely when I came in for my scan.",
    "I have waited eleven weeks for a reply to my housing repair complaint.",
    "Please can you send me a copy of the minutes from the last residents' meeting?",
    "The car park ticket machine only takes coins, which is ridiculous in 2026.",
]


@pytest.mark.parametrize("text", DISCLOSURES)
def test_risk_is_flagged_in_many_phrasings(net: SafetyNet, text: str) -> None:
    assert "safeguarding" not in text.lower()
    assert net.rule_hits(text), text


@pytest.mark.parametrize("text", NEGATED)
def test_negation_does_not_hide_a_disclosure(net: SafetyNet, text: str) -> None:
    assert net.rule_hits(text)


@pytest.mark.parametrize("text", ROUTINE)
def test_routine_messages_raise_no_rule(net: SafetyNet, text: str) -> None:
    assert net.rule_hits(text) == ()


def test_model_probability_alone_raises_the_flag(net: SafetyNet) -> None:
    routine = ROUTINE[0]
    assert net.reasons(routine, net.probability) == (MODEL_REASON,)
    assert net.reasons(routine, net.probability / 2) == ()
    assert net.reasons(DISCLOSURES[0], 0.0)[0] != MODEL_REASON


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_extra_rules_file_extends_the_shipped_rules(tmp_path: Path) -> None:
    extra = _write(
        tmp_path / "local.toml",
        '[[rule]]\nid = "local-hotspot"\nwhy = "Known exploitation site"\n'
        "patterns = ['\\bbridge street underpass\\b']\n",
    )
    rules = load_rules(extra)
    assert {r.id for r in shipped_rules()} < {r.id for r in rules}
    net = SafetyNet(rules)
    assert net.rule_hits("Some lads hang around the Bridge Street underpass after dark.") == (
        "local-hotspot",
    )
    assert net.rule_hits(DISCLOSURES[3])  # shipped rules still apply


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[[rule]]\nid = \"self-harm\"\npatterns = ['x{2}y']\n", "already defined"),
        ("[[rule]]\nid = \"broken\"\npatterns = ['(unclosed']\n", "rule 'broken': bad pattern"),
        ("[[rule]]\nid = \"loud\"\npatterns = ['Knife']\n", "capitals"),
        ("[[rule]]\nid = \"typo\"\npattern = ['x']\n", "unknown key"),
        ("[[rule]]\nid = \"empty\"\npatterns = ['x?']\n", "matches empty text"),
        ("[[rule]]\nid = \"Bad Id\"\npatterns = ['x']\n", "id must be"),
        ("rule = 3\n", "expected one or more"),
    ],
)
def test_bad_extra_rules_are_refused_with_file_and_rule(
    tmp_path: Path, document: str, problem: str
) -> None:
    extra = _write(tmp_path / "bad.toml", document)
    with pytest.raises(RulesError, match=re.escape(problem)) as caught:
        load_rules(extra)
    assert str(extra) in str(caught.value)


def _config_with_rules(tmp_path: Path, extra: Path) -> Config:
    return parse_config(
        {
            "daemon": {"state_dir": str(tmp_path / "state"), "prepare_processes": 0},
            "classifier": {"extra_rules": str(extra)},
            "smtp": {"host": "127.0.0.1"},
            "mailbox": [
                {
                    "name": "m",
                    "address": "complaints@example.org",
                    "organisation": "Example",
                    "imap": {"host": "127.0.0.1", "username": "u"},
                }
            ],
        },
        "test",
    )


def test_daemon_refuses_to_start_with_bad_extra_rules(tmp_path: Path) -> None:
    extra = _write(tmp_path / "bad.toml", "[[rule]]\nid = \"x\"\npatterns = ['(']\n")
    with pytest.raises(RulesError, match=r"bad\.toml"):
        load_classifier(tmp_path / "state", ClassifierConfig(extra_rules=extra))
    with pytest.raises(ConfigError, match="extra_rules"):
        make_preparer(_config_with_rules(tmp_path, extra))


def test_shipped_rules_parse_and_every_rule_documents_why() -> None:
    rules = shipped_rules()
    assert len({r.id for r in rules}) == len(rules)
    assert all(r.why for r in rules)


_VOCABULARY = sorted(
    {
        word
        for text in DISCLOSURES + NEGATED + ROUTINE
        for word in re.findall(r"[\w']+", text.lower())
    }
    | {"the", "he", "hes", "she", "no", "at", "risk", "danger", "missing", "old", "year"}
)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=60))
def test_fast_matching_finds_exactly_what_a_plain_search_finds(words: list[str]) -> None:
    text = normalise(" ".join(words))
    plain = {rule.id for rule in _SHIPPED.rules for p in rule.patterns if re.search(p, text)}
    assert set(_SHIPPED.rule_hits(text)) == plain
