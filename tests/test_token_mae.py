import jax
import jax.numpy as jnp
import numpy as np

from mmjax.masking.mask import random_mask
from mmjax.models import TokenDecoder, TokenEncoder
from mmjax.models.config import TransformerConfig


def test_encoder_sees_only_kept_tokens_and_decoder_predicts_all():
    b, n, d = 2, 12, 16
    tokens = jax.random.normal(jax.random.key(0), (b, n, d))
    mask = random_mask(jax.random.key(1), b, n, 0.75)
    enc = TokenEncoder(width=d, transformer=TransformerConfig(depth=1, heads=2, mlp_dim=32))
    dec = TokenDecoder(width=8, out_dim=5, transformer=TransformerConfig(depth=1, heads=2, mlp_dim=16))
    enc_params = enc.init(jax.random.key(2), tokens, mask.ids_keep)
    latent, out = enc.apply(enc_params, tokens, mask.ids_keep)
    np.testing.assert_array_equal(out["encoded"], latent)
    assert sorted(out) == ["block1", "encoded"]
    assert latent.shape == (b, 1 + 3, d)
    # Changing a hidden token changes nothing; changing a kept one does.
    hidden_i = int(jnp.argmax(mask.mask[0]))
    kept_i = int(mask.ids_keep[0, 0])
    bumped_hidden = tokens.at[0, hidden_i].add(5.0)
    bumped_kept = tokens.at[0, kept_i].add(5.0)
    np.testing.assert_array_equal(enc.apply(enc_params, bumped_hidden, mask.ids_keep)[0], latent)
    assert not np.allclose(enc.apply(enc_params, bumped_kept, mask.ids_keep)[0][0], latent[0])
    positions = jnp.zeros((n, 8))
    dec_params = dec.init(jax.random.key(3), latent, mask.ids_restore, positions)
    assert dec.apply(dec_params, latent, mask.ids_restore, positions).shape == (b, n, 5)
