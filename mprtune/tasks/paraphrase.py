"""The paraphrase kind: say the same thing in other words (PAWS, QQP), scored with BLEU/iBLEU and copying."""

from __future__ import annotations

from mprtune.tasks.base import DataLicence, Preparer
from mprtune.tasks.builtin import BuiltinKind

PAWS = DataLicence(
    "PAWS labeled_final (Zhang, Baldridge & He, 2019), Wikipedia-based pairs",
    "Google's PAWS release: free for any purpose, acknowledgement of Google appreciated, provided as is; "
    "the sentences come from Wikipedia (CC BY-SA): see source",
    "https://github.com/google-research-datasets/paws",
    False,
)
QQP = DataLicence(
    "Quora Question Pairs (Quora's first dataset release; GLUE QQP)",
    "Quora's terms of service; Quora released it for non-commercial use as far as we can tell: see source "
    "before any commercial use",
    "https://quoradata.quora.com/First-Quora-Dataset-Release-Question-Pairs",
    True,
)


class Paraphrase(BuiltinKind):
    name = "paraphrase"
    description = "Restate a sentence or question with the same meaning (iBLEU, BLEU, self-BLEU, copy rate)."
    preparers = (
        Preparer("paws", "paws_train", "paws_eval", "mprtune.data.paraphrase:build_paws", PAWS),
        Preparer("qqp", "qqp_train", "qqp_eval", "mprtune.data.paraphrase:build_qqp", QQP),
    )
    own_metrics = ("bleu", "self_bleu", "ibleu", "copy_rate")
    primary = "ibleu"
    summary = ("ibleu", "exact_match", "empty", "verbose", "copy_rate", "length_gap")
    table = ("ibleu", "bleu", "self_bleu", "copy_rate")
    panel = ("ibleu",)
    sample_flags = (("empty", "EMPTY"), ("exact", "EXACT"), ("verbose", "VERBOSE"), ("copy", "COPY"))
    good_flags = ("exact",)
