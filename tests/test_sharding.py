"""Data-parallel over 8 simulated CPU devices == one device at the same global batch."""
import os
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from configs import wgan_gp
    from gemgan import models, parallel, steps
    assert jax.device_count() == 8, jax.devices()
    # G's BatchNorm (global batch statistics, running stats compared below) and
    # the gradient penalty (per-example input gradients) in one recipe.
    c = wgan_gp.get_config()
    c.data.image_size, c.model.width, c.model.latent_dim = 16, 4, 8
    c.batch_size, c.n_critic = 16, 2
    g, d = models.build_models(c)
    rng = np.random.RandomState(0)
    batches = [{"image": rng.uniform(-1, 1, (2, 16, 16, 16, 3)).astype(np.float32),
                "label": np.zeros((2, 16), np.int32)} for _ in range(2)]
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
      step, rep, bs = parallel.make_sharded_train_step(c, g, d, parallel.make_mesh(devices))
      state = jax.device_put(steps.create_train_state(c, g, d), rep)
      for b in batches:
        b = parallel.shard_batch(b, bs)
        assert len(b["image"].sharding.device_set) == len(devices)
        state, m = step(state, b)
      assert len(state.generator.params["conv_0"]["kernel"].sharding.device_set) == len(devices)
      results.append(jax.device_get(state))
    one, eight = results
    leaves = zip(jax.tree_util.tree_leaves_with_path(one), jax.tree_util.tree_leaves(eight))
    for (path, a), b in leaves:
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=str(path))
    print(c.model.name, "equal over", len(jax.tree_util.tree_leaves(one)), "leaves")
    print("SHARDING_OK")
""")


def test_eight_devices_match_one_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO_ROOT))
  proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
  assert "SHARDING_OK" in proc.stdout
