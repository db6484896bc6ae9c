"""The grammar kind: fix a sentence (JFLEG), scored with the official GLEU and edit-level labels."""

from __future__ import annotations

from mprtune.tasks.base import DataLicence, Preparer
from mprtune.tasks.builtin import BuiltinKind

JFLEG = DataLicence(
    "JFLEG (Napoles, Sakaguchi & Tetreault, 2017): GUG sentences with four fluency corrections",
    "CC BY-NC-SA 4.0: non-commercial use only; adaptations share alike",
    "https://github.com/keisks/jfleg",
    True,
)


class Grammar(BuiltinKind):
    name = "grammar"
    description = "Rewrite a sentence without its grammatical errors (GLEU, exact, acceptable, over-corrections)."
    preparers = (Preparer("jfleg", "jfleg_train", "jfleg_eval", "mprtune.data.jfleg:build", JFLEG),)
    own_metrics = ("gleu", "acceptable", "over_corrects")
    primary = "gleu"
    summary = ("gleu", "exact_match", "empty", "verbose", "over_corrects", "length_gap")
    table = ("gleu", "acceptable", "over_corrects")
    panel = ("gleu",)
    sample_flags = (
        ("empty", "EMPTY"),
        ("exact", "EXACT"),
        ("acceptable", "ACCEPTABLE"),
        ("verbose", "VERBOSE"),
        ("over_corrects", "OVER-CORRECTS"),
    )
    good_flags = ("exact", "acceptable")
