"""ERNIE-Gram's explicit n-gram prediction on the bundled Python reference manual: `mlm_pydoc.py` with
`mlm.selection=ngram` and `ngram.vocab_size=512`.

ERNIE-Gram (Xiao et al. 2021, "ERNIE-Gram: Pre-Training with Explicitly N-Gram Masked Language
Modeling") masks whole n-grams (up to 3 words, `mlm.max_ngram`) and predicts each masked n-gram
as one identity besides its tokens: a lexicon of the 512 most frequent n-grams of 2 to 3 tokens
of the train split (seen at least twice, whole words only) is built with the method, and a small
head reads the hidden state at each masked n-gram's first position and adds its cross-entropy
over the lexicon (`ngram.weight` 1) to BERT's loss on every masked token. A masked n-gram outside
the lexicon, or of one token, has no n-gram target (`ngram_coverage` is the share that has one).
Not implemented, on purpose: the single `[MASK]` per n-gram (rows keep n `[MASK]`s) and the
enhanced relative attention. The held-out evaluation is masked-token accuracy under the n-gram
selection, so it compares with `mlm_pydoc.py:selection=ngram` rather than with BERT's uniform one.
Everything else is `mlm_pydoc.py`'s recipe.

Variants: as `mlm_pydoc.py` (`steps=N`, `rate=...`); its `selection=...` is read but replaced
here by n-gram masking.
"""

from pathlib import Path

import ml_collections

from mmjax.config import load_experiment


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = load_experiment(Path(__file__).with_name("mlm_pydoc.py"), arg)
    config.mlm.update(selection="ngram", max_ngram=3)
    config.ngram.update(vocab_size=512, max_n=3)
    return config
