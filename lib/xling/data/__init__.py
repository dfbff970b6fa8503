"""The data stage: the posts table from every source, validated; the predictions table on disk.

Modules: ``archive`` (an archive's files read chunk by chunk, the demo archive), ``validate``
(labels, language codes, row-level errors), ``readers`` (CSV / TSV / Excel / Parquet and the
authors' files by name), ``sources`` (the demo corpus, a user's file, evaluation files, the
authors' files: :func:`load_posts`), ``tables`` (writing and reading the posts and predictions
tables), ``summaries`` (counts, the floors, examples), ``card`` (the run's data card), ``audit``
(which evaluation posts a variant could have seen in training). Notebooks use the short names
re-exported here (``data.load_posts``); library code imports from the defining module.

Layer 2. May import: :mod:`xling.paths`, :mod:`xling.schema`, :mod:`xling.config`,
:mod:`xling.artifacts`.
"""

from __future__ import annotations

from xling.data.archive import (  # noqa: F401
    ArchiveError,
    demo_archive,
    expand_inputs,
    read_chunk,
    scan_file,
)
from xling.data.audit import (  # noqa: F401
    audit_splits,
    describe_audit,
    normalize_text,
    seen_allowed,
    seen_in_training,
    training_posts,
)
from xling.data.card import data_card, duplicate_texts  # noqa: F401
from xling.data.readers import (  # noqa: F401
    PaperFile,
    paper_files,
    parse_paper_name,
    read_paper_file,
    read_table,
)
from xling.data.sources import (  # noqa: F401
    AUTHORS_SAMPLE,
    label_conflicts,
    load_demo_posts,
    load_eval_files,
    load_paper_posts,
    load_paper_sample,
    load_posts,
    load_run_posts,
    load_user_posts,
    resolve_conflicts,
    stratified_sample,
    stratified_split,
)
from xling.data.summaries import (  # noqa: F401
    PAPER_SIZES,
    compare_sizes,
    count_posts,
    describe_form_gap,
    example_posts,
    form_gap,
    label_floor,
    post_form,
    subsample,
    unrelated_share,
)
from xling.data.tables import (  # noqa: F401
    check_predictions,
    fingerprint_files,
    posts_fingerprint,
    read_posts,
    read_predictions,
    replace_translated,
    write_posts,
)
from xling.data.validate import (  # noqa: F401
    ISO_639_1,
    PostsError,
    canonical_lang,
    normalize_labels,
    validate_posts,
)
from xling.schema import (  # noqa: F401  (the vocabulary, for notebooks)
    CAT_CODES,
    CONFLICTS,
    EVAL_SPLITS,
    LABELS,
    LANG_ALIASES,
    PAPER_LANGS,
    POSTS_COLUMNS,
    REQUIRED_USER_COLUMNS,
    SPLITS,
    TRAIN_SPLITS,
)
