"""Drug prototype tables: mechanism, contraindications, indications and adverse effects of a named drug.

Nursing pharmacology texts (OpenStax *Pharmacology for Nurses*) give each drug class a prototype
table whose cells are ``**Field**: value`` pairs (Drug Class, Mechanism of Action, Indications,
Therapeutic Effects, Adverse Effects, Contraindications, ...) and whose caption names the drug
("*Drug Prototype Table: Azathioprine*", or "a drug prototype table ... featuring azathioprine").
Each field of a named table is a self-contained fact about that drug; the candidates here carry
the fields of the medical skill's ``mechanism_of_action`` and ``contraindication`` types (the
generator maps them onto whichever types a skill has), with the field's text as evidence.
"""

from __future__ import annotations

import re

from prepbench.agents.extractive.candidates import Cand
from prepbench.tools.nlp import parse

_FIELD = re.compile(
    r"\*\*(Drug Class|Mechanism of Action|Indications|Therapeutic Effects|Adverse Effects|Contraindications)\*\*:\s*"
    r"(?P<value>[^|*]+?)\s*(?=\*\*[A-Z][A-Za-z ]+\*\*:|\||$)",
    re.M,
)
_NAME = (
    re.compile(r"Drug Prototype Table:\s*([A-Z][\w\- ]{2,40}?(?:/[A-Z][\w\- ]{2,40}?)?)\*\*"),
    # a combination ("featuring nirmatrelvir/ritonavir") is one name: its effects are the pair's
    re.compile(r"drug prototype table [^.]{0,160}?\bfeaturing ([a-z][\w-]{2,30}(?:/[a-z][\w-]{2,30})?)\b"),
)


def drug_table(text: str) -> tuple[str, dict[str, tuple[str, str]]] | None:
    """``(drug, {field: (value, evidence)})`` of the one named prototype table in ``text``, or None.

    ``evidence`` is the verbatim ``**Field**: value`` span of the chunk; ``value`` is stripped
    of a trailing period. None when the text has no table cells, no drug name, or two tables.
    """
    names = {m.group(1).strip() for rx in _NAME for m in rx.finditer(text)}
    names = {n[0].upper() + n[1:].lower() for n in names}
    if len(names) != 1:
        # two drugs, or the title's "Hydralazine/Isosorbide Dinitrate" against the text's "featuring
        # hydralazine and ...": which drug a cell is about is unclear (read defective: the pair's
        # contraindications given as hydralazine's)
        return None
    fields: dict[str, tuple[str, str]] = {}
    for m in _FIELD.finditer(text):
        if m.group(1) in fields:
            return None  # two tables in one chunk: which cell belongs to which drug is unclear
        value = " ".join(m.group("value").split()).rstrip(" .;")
        if len(value) >= 4 and not value.lower().startswith(("no significant", "none")):
            fields[m.group(1)] = (value, m.group(0).strip())
    return (names.pop(), fields) if fields else None


def _items(value: str) -> list[str]:
    """The ';'-separated items of a cell, up to a "Caution:" part, without empty ones."""
    value = re.split(r"(?i)\bcaution:", value)[0]
    return [i.strip(" .;") for i in value.split(";") if len(i.strip(" .;")) >= 3]


def _acts(item: str) -> bool:
    """A cell item opens with a verb in the third person ("Slows heart rate"); parsed after "It",
    since a capitalised first word parses as a noun."""
    return parse("It " + item[0].lower() + item[1:])[1].tag_ == "VBZ"


#: a cell item that opens with a name: "Addison’s disease", "Cushing's syndrome" (an eponym keeps its capital, AC031)
_EPONYM = re.compile(r"[A-Z][a-z]+['’]s\b")


def _join(items: list[str]) -> str:
    """The items as a list in a sentence ("a, b and c"), each lower-cased unless it opens with an
    acronym or an eponym."""
    low = [i if i[:2].isupper() or _EPONYM.match(i) else i[0].lower() + i[1:] for i in items]
    return low[0] if len(low) == 1 else ", ".join(low[:-1]) + " and " + low[-1]


def _mid_sentence(drug: str) -> str:
    """The drug's name as written mid-sentence: "metoprolol succinate", an acronym kept ("CMS")."""
    return " ".join(w if w.isupper() else w.lower() for w in drug.split())


def _mechanism(drug: str, value: str) -> str | None:
    """The mechanism sentence: "Pegfilgrastim binds to ..." when the cell opens with a verb in the
    third person, "The mechanism of action of X is ..." when it opens with a noun phrase; None for
    any other verb form ("Used as a partial agonist ...": no sentence states it whole)."""
    first = parse(value)[0]
    lowered = value[0].lower() + value[1:]
    # a cell alone is no sentence ("inhibits HMG-CoA reductase" can parse as a plural noun):
    # read it after a subject, as the sentence it will be
    # past the adverbs: "Directly stimulates beta receptors ..." is "Albuterol directly stimulates ..."
    # (seed 1230, read weak: "The mechanism of action of Albuterol is directly stimulates ...")
    as_verb = next((t for t in parse(f"It {lowered}")[1:] if t.pos_ != "ADV"), first).tag_ == "VBZ"
    if as_verb or first.tag_ in ("VBZ", "NNS") and first.lower_.endswith("s"):  # "Inhibits", "Binds", "Blocks"
        return f"{drug} {lowered}."
    if first.pos_ in ("VERB", "AUX") or first.tag_.startswith("VB"):
        return None
    return f"The mechanism of action of {_mid_sentence(drug)} is {lowered}."


def drug_candidates(text: str) -> list[Cand]:
    """Candidates from the chunk's named drug prototype table (see the module docstring)."""
    found = drug_table(text)
    if found is None:
        return []
    drug, f = found
    low = _mid_sentence(drug)
    out: list[Cand] = []
    mechanism = _mechanism(drug, f["Mechanism of Action"][0]) if "Mechanism of Action" in f else None
    if mechanism is not None:
        ev = f["Mechanism of Action"][1]
        fields = {"question": f"What is the mechanism of action of {low}?", "answer": mechanism}
        evidence = [ev]
        if "Drug Class" in f:
            fields["drug_class"] = f["Drug Class"][0]
            evidence.append(f["Drug Class"][1])
        fields.update(drug=drug, question_type="explanation", knowledge_point=f"{drug} mechanism of action")
        out.append(Cand("concept_qa", fields, evidence, "mechanism", 1.3, f"{drug}:mechanism"))
    if "Contraindications" in f and _items(f["Contraindications"][0]):
        items = _items(f["Contraindications"][0])
        fields = {
            "question": f"What are the contraindications of {low}?",
            "answer": f"The contraindications of {low} include {_join(items)}.",
            "drug": drug,
            "contraindications": items[:10],
            "question_type": "enumeration",
            "knowledge_point": f"{drug} contraindications",
        }
        out.append(Cand("concept_qa", fields, [f["Contraindications"][1]], "contraindication", 1.25, f"{drug}:contra"))
    for name, question, lead in (
        ("Adverse Effects", "What are the adverse effects of {d}?", "The adverse effects of {d} include {x}."),
        ("Indications", "What is {d} indicated for?", "{D} is indicated {x}."),
        ("Therapeutic Effects", "What are the therapeutic effects of {d}?", "The therapeutic effects of {d} are: {x}."),
    ):
        items = _items(f[name][0]) if name in f else []
        if items and name == "Indications" and _acts(items[0]):
            items = []  # "Reduces relapse in RRMS": an effect, not what the drug is indicated for
        adjunct = re.match(r"(?i)adjunct(?:ive)? (?:therapy )?(to|with) ", items[0]) if items and name == "Indications" else None
        if adjunct:  # "Adjunctive to levodopa in ...": "is indicated for adjunctive to" read as broken (AB028)
            items[0] = f"as an adjunct {adjunct.group(1).lower()} {items[0][adjunct.end() :]}"
        elif items and name == "Indications" and not items[0].lower().startswith("to "):
            items[0] = "for " + (items[0] if items[0][:2].isupper() else items[0][0].lower() + items[0][1:])
        if any(":" in i for i in items):
            items = []  # "Monotherapy: Produces ...; Combination: ...": sub-labels read as no list
        if items and name == "Therapeutic Effects":
            verbs = [_acts(i) for i in items]
            if all(verbs):  # "Slows heart rate": the drug does it ("Digoxin slows heart rate.")
                lead = "{D} {x}."
            elif any(verbs):  # a mix of actions and nouns reads as no sentence
                items = []
            else:  # "Reduced incidence of asthmatic symptoms"
                lead = "The therapeutic effects of {d} include {x}."
        if items:
            fields = {
                "question": question.format(d=low),
                "answer": lead.format(d=low, D=drug, x=_join(items)),
                "question_type": "enumeration",
                "knowledge_point": f"{drug} {name.lower()}",
            }
            out.append(Cand("concept_qa", fields, [f[name][1]], name.lower(), 1.2, f"{drug}:{name}"))
    return out
