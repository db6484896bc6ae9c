"""The knowledge kind: answer questions (KILT NQ) and describe entities (Wikipedia), SQuAD-normalised."""

from __future__ import annotations

from mprtune.tasks.base import DataLicence, Preparer
from mprtune.tasks.builtin import BuiltinKind

DESCRIBE_PROMPT = "Describe: "  # prompt prefix of entity-description rows (not in the matrix)
KILT_QA = DataLicence(
    "KILT Natural Questions (Petroni et al., 2021; Kwiatkowski et al., 2019)",
    "KILT: MIT; the underlying Natural Questions data: CC BY-SA 3.0: see source",
    "https://github.com/facebookresearch/KILT",
    False,
)
WIKI = DataLicence(
    "KILT knowledge source (Wikipedia snapshot of 2019-08-01): entity descriptions",
    "Wikipedia text: CC BY-SA (and GFDL): see source",
    "https://github.com/facebookresearch/KILT",
    False,
)


class Knowledge(BuiltinKind):
    name = "knowledge"
    description = "Short answers (QA exact match, F1) and entity descriptions (ROUGE-L); rows say which they are."
    preparers = (
        Preparer("kilt_qa", "kilt_qa_train", "kilt_qa_eval", "mprtune.data.knowledge:build_qa", KILT_QA),
        Preparer(
            "wiki_desc",
            "wiki_desc_train",
            "wiki_desc_eval",
            "mprtune.data.knowledge:build_descriptions",
            WIKI,
            fixed_prompt=DESCRIBE_PROMPT,
        ),
    )
    own_metrics = ("qa_exact_match", "qa_f1", "rouge_l")
    primary = "qa_f1"
    summary = ("qa_f1", "rouge_l", "empty", "verbose", "length_gap")
    table = ("qa_f1", "qa_exact_match", "rouge_l")
    panel = ("qa_f1", "rouge_l", "qa_exact_match")
    sample_flags = (("empty", "EMPTY"), ("exact", "EXACT"), ("qa_exact_match", "QA-EXACT"), ("verbose", "VERBOSE"))
    good_flags = ("exact", "qa_exact_match")
