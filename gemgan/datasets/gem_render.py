"""Procedural gem pictures, vectorised in JAX: cut stones and cabochons.

Every picture is one stone, centred with some jitter, on a plain light, grey
or dark background, like a dealer's product photo. A stone is an outline
(a star-shaped curve stored as radius-per-angle, so any outline costs the same
to draw) plus a surface:

* brilliant cuts: a table, star, kite and upper-girdle facets laid out in
  (gauge, angle) coordinates, each facet shaded by its own normal, a light
  direction and a random "internal reflection" brightness, with thin bright
  facet edges;
* step cuts (emerald, princess): concentric rings split into sides;
* cabochons: a smooth dome with diffuse shading and a specular highlight,
  plain, cat's-eye, or banded (agate / malachite).

The label is the kind (shape and cut), not the colour. Picture i depends only
on (seed, i) (seed >= 0): its parameters come from a numpy generator keyed by
both, so any prefix of a larger set is the smaller set. Drawing is a jitted,
vmapped JAX function per (image size, surface): XLA fuses the per-pixel maths,
which made it several times faster than the same maths in numpy here, and the
outline is anti-aliased analytically from the gauge instead of supersampled.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("round_brilliant", "oval_brilliant", "cushion", "pear", "marquise",
         "emerald_cut", "princess", "trillion", "cabochon", "banded_cabochon")

_ANGLES = 256  # samples of an outline's radius-per-angle table
_NUM_FACET_VALUES = 256  # size of each picture's random facet-brightness table
_GRID = (np.arange(_ANGLES) + 0.5) / _ANGLES * 2 * np.pi - np.pi  # table angles
_GRID_SIN, _GRID_COS = np.sin(_GRID), np.cos(_GRID)

# Body colours (linear-ish RGB in [0, 1]): transparent cut stones ...
_CUT_COLOURS = np.array([
    (0.78, 0.04, 0.12),  # ruby
    (0.10, 0.22, 0.75),  # sapphire
    (0.04, 0.55, 0.25),  # emerald
    (0.52, 0.20, 0.72),  # amethyst
    (0.96, 0.72, 0.10),  # citrine
    (0.95, 0.45, 0.08),  # topaz
    (0.45, 0.80, 0.92),  # aquamarine
    (0.92, 0.93, 0.96),  # diamond
    (0.96, 0.45, 0.66),  # pink sapphire
    (0.60, 0.80, 0.15),  # peridot
    (0.42, 0.02, 0.06),  # garnet
    (0.45, 0.34, 0.26),  # smoky quartz
    (0.30, 0.26, 0.78),  # tanzanite
    (0.06, 0.06, 0.07),  # black onyx / spinel
], np.float32)
_COLOURLESS = 7
# ... and opaque or translucent cabochon stones.
_CAB_COLOURS = np.array([
    (0.20, 0.74, 0.70),  # turquoise
    (0.28, 0.60, 0.34),  # jade
    (0.10, 0.20, 0.62),  # lapis
    (0.92, 0.36, 0.30),  # coral
    (0.86, 0.88, 0.93),  # moonstone
    (0.88, 0.52, 0.10),  # amber
    (0.78, 0.04, 0.12),  # ruby
    (0.52, 0.20, 0.72),  # amethyst
    (0.62, 0.28, 0.12),  # tiger's eye
    (0.90, 0.72, 0.70),  # rose quartz
], np.float32)
_BAND_PAIRS = np.array([
    ((0.02, 0.42, 0.25), (0.30, 0.78, 0.55)),  # malachite
    ((0.85, 0.40, 0.12), (0.97, 0.88, 0.78)),  # carnelian agate
    ((0.05, 0.05, 0.06), (0.92, 0.92, 0.92)),  # sardonyx
    ((0.40, 0.50, 0.78), (0.85, 0.88, 0.95)),  # blue lace agate
    ((0.45, 0.22, 0.08), (0.86, 0.62, 0.20)),  # tiger's eye bands
    ((0.55, 0.15, 0.35), (0.95, 0.75, 0.82)),  # rhodochrosite
], np.float32)


# ---------------------------------------------------------------- outlines


def _densify(vertices: np.ndarray, per_edge: int = 48):
  """Closed polygon -> many boundary points, plus each point's edge index."""
  a, b = vertices, np.roll(vertices, -1, axis=0)
  t = (np.arange(per_edge) / per_edge)[None, :, None]
  points = a[:, None] + t * (b - a)[:, None]
  sides = np.repeat(np.arange(len(vertices)), per_edge)
  return points.reshape(-1, 2), sides


def _outline(kind: str, rng: np.random.Generator):
  """Boundary points [P, 2] and their side index [P] for one stone."""
  t = np.linspace(0, 2 * np.pi, 512, endpoint=False)
  sides = (t // (np.pi / 4)).astype(int)  # 8 arbitrary sides for smooth outlines
  if kind == "round_brilliant" or (kind == "cabochon" and rng.random() < 0.6):
    pts = np.stack([np.cos(t), np.sin(t)], -1)
  elif kind in ("oval_brilliant", "cabochon", "banded_cabochon"):
    pts = np.stack([np.cos(t), rng.uniform(0.62, 0.82) * np.sin(t)], -1)
  elif kind == "cushion":
    p, b = rng.uniform(3.0, 4.5), rng.uniform(0.78, 1.0)
    c, s = np.cos(t), np.sin(t)
    pts = np.stack([np.sign(c) * np.abs(c) ** (2 / p), b * np.sign(s) * np.abs(s) ** (2 / p)], -1)
  elif kind == "pear":
    m, w = rng.uniform(0.9, 1.4), rng.uniform(0.68, 0.82)
    pts = np.stack([w * np.sin(t) * np.sin(t / 2) ** m, -np.cos(t)], -1)
  elif kind == "marquise":
    w = rng.uniform(0.38, 0.52)
    cx = (1 - w * w) / (2 * w)
    r = cx + w
    t0 = np.arctan2(1.0, cx)
    arc = np.linspace(-t0, t0, 256)
    right = np.stack([-cx + r * np.cos(arc), r * np.sin(arc)], -1)
    pts = np.concatenate([right, -right])
  elif kind == "emerald_cut":
    b, c = rng.uniform(0.58, 0.8), rng.uniform(0.16, 0.26)
    v = np.array([(1, -b + c), (1, b - c), (1 - c, b), (-1 + c, b), (-1, b - c), (-1, -b + c),
                  (-1 + c, -b), (1 - c, -b)])
    pts, sides = _densify(v)
  elif kind == "princess":
    # Four sides, each halved at its midpoint: the halves make the chevrons.
    v = np.array([(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)], float)
    pts, sides = _densify(v)
    sides = (sides + 1) % 8  # halves meet at the corners, not the midpoints
  elif kind == "trillion":
    ang = np.deg2rad([-90, 30, 150])
    v = np.stack([np.cos(ang), np.sin(ang)], -1)
    pts, sides = _densify(v, 128)
    # Slightly convex sides, as real trillions have.
    u = (np.arange(len(pts)) % 128) / 128
    pts = pts * (1 + rng.uniform(0.05, 0.15) * np.sin(np.pi * u))[:, None]
  else:
    raise ValueError(f"unknown gem kind {kind!r}")
  pts = pts - (pts.max(0) + pts.min(0)) / 2  # centre the bounding box
  return pts, sides


def _polar_tables(points: np.ndarray, sides: np.ndarray):
  """Radius-per-angle (normalised to max 1) and side-per-angle tables."""
  phi = np.arctan2(points[:, 1], points[:, 0])
  rho = np.hypot(points[:, 0], points[:, 1])
  order = np.argsort(phi)
  phi, rho, sides = phi[order], rho[order], sides[order]
  radius = np.interp(_GRID, phi, rho, period=2 * np.pi)
  nearest = np.clip(np.searchsorted(phi, _GRID), 0, len(phi) - 1)
  return (radius / rho.max()).astype(np.float32), sides[nearest].astype(np.int32)


# -------------------------------------------------------------- parameters


def _params(seed: int, index: int) -> dict:
  """Everything random about picture `index`, from its own generator."""
  rng = np.random.default_rng([seed, index, 0x6E35])
  kind = int(rng.integers(len(KINDS)))
  name = KINDS[kind]
  radius, sides = _polar_tables(*_outline(name, rng))
  # Outward direction of each side: its mean angle (step cuts shade by side).
  side_angle = np.arctan2(np.bincount(sides, _GRID_SIN, 8), np.bincount(sides, _GRID_COS, 8))
  colourless = False
  if name == "banded_cabochon":
    pair = _BAND_PAIRS[rng.integers(len(_BAND_PAIRS))]
    colour, colour2 = (pair if rng.random() < 0.5 else pair[::-1])
  elif name == "cabochon":
    colour = _CAB_COLOURS[rng.integers(len(_CAB_COLOURS))]
    colour2 = colour
  else:
    pick = rng.integers(len(_CUT_COLOURS))
    colour = colour2 = _CUT_COLOURS[pick]
    colourless = pick == _COLOURLESS
  jitter = rng.normal(0, 0.04, 3).astype(np.float32)
  bg_kind = rng.choice(3, p=[0.5, 0.2, 0.3])  # light, grey, dark
  bg_level = [rng.uniform(0.82, 1.0), rng.uniform(0.4, 0.68), rng.uniform(0.0, 0.14)][bg_kind]
  elongated = name in ("pear", "marquise", "emerald_cut", "oval_brilliant")
  rotation = rng.normal(0, 0.3) + (rng.choice([0, np.pi / 2]) if elongated else
                                   rng.uniform(-np.pi, np.pi) * (name == "round_brilliant"))
  light = rng.uniform(-2.6, -1.9)  # azimuth: light from the upper left
  return dict(
      kind=np.int32(kind), radius=radius, sides=sides, side_angle=side_angle,
      colour=np.clip(colour + jitter, 0, 1), colour2=np.clip(colour2 + jitter, 0, 1),
      colourless=float(colourless),
      centre=rng.normal(0, 0.04, 2), scale=rng.uniform(0.66, 0.88), rotation=rotation,
      light=np.array([np.cos(light), np.sin(light)]) * 0.62,
      bg_kind=np.int32(bg_kind), bg_level=bg_level, bg_tint=rng.normal(0, 0.02, 3),
      bg_gradient=rng.uniform(-0.08, 0.08), shadow=rng.uniform(0.15, 0.35),
      facet_values=rng.random(_NUM_FACET_VALUES).astype(np.float32),
      table_size=rng.uniform(0.45, 0.6), sectors=np.int32(8 if name != "trillion" else 6),
      sector_phase=-np.pi / 2 if name == "trillion" else 0.0,
      cats_eye=float(name == "cabochon" and rng.random() < 0.25),
      translucent=float(rng.random() < 0.5),
      band_freq=rng.uniform(9, 18), band_angle=rng.uniform(0, np.pi),
      band_concentric=float(rng.random() < 0.5), band_phase=rng.uniform(0, 2 * np.pi, 4),
  )


# ---------------------------------------------------------------- drawing

_CHUNK = 64  # pictures per compiled call; a surface's last chunk is padded
# Each surface is its own compiled function, so no picture pays for another's maths.
_STEP_KINDS = (KINDS.index("emerald_cut"), KINDS.index("princess"))
_CABOCHON_KINDS = (KINDS.index("cabochon"), KINDS.index("banded_cabochon"))


def _surface(kind: int) -> str:
  return ("cabochon" if kind in _CABOCHON_KINDS else "step" if kind in _STEP_KINDS else
          "brilliant")


def render(seed: int, start: int, count: int, image_size: int):
  """Pictures start, ..., start + count - 1 of the set made from `seed`.

  Returns (images uint8 [count, image_size, image_size, 3], labels int32
  [count]); labels index `KINDS`.
  """
  images = np.zeros((count, image_size, image_size, 3), np.uint8)
  labels = np.zeros((count,), np.int32)
  queues = {"brilliant": [], "step": [], "cabochon": []}  # (index, params) per surface
  drawn = []  # (indices, device array): drawing runs while later parameters are made

  def flush(surface):
    items, queues[surface] = queues[surface], []
    params = [p for _, p in items]
    params += params[-1:] * (_CHUNK - len(params))  # fixed shape: one compilation
    batch = {k: np.stack([p[k] for p in params]) for k in params[0]}
    drawn.append(([i for i, _ in items], _draw(batch, image_size, surface)))

  for i in range(count):
    p = _params(seed, start + i)
    labels[i] = p["kind"]
    surface = _surface(int(p["kind"]))
    queues[surface].append((i, p))
    if len(queues[surface]) == _CHUNK:
      flush(surface)
  for surface, items in queues.items():
    if items:
      flush(surface)
  for indices, pictures in drawn:
    images[indices] = np.asarray(pictures)[:len(indices)]
  return images, labels


def _smoothstep(x):
  x = jnp.clip(x, 0.0, 1.0)
  return x * x * (3 - 2 * x)


def _gauge(u, v, radius):
  """Outline gauge (0 at the centre, 1 on the outline), angle and table position."""
  phi = jnp.arctan2(v, u)
  pos = jnp.minimum(((phi + jnp.pi) * (_ANGLES / (2 * jnp.pi))).astype(jnp.int32), _ANGLES - 1)
  return jnp.sqrt(u * u + v * v) / radius[pos], phi, pos


@functools.partial(jax.jit, static_argnums=(1, 2))
def _draw(batch, image_size: int, surface: str):
  """uint8 NHWC pictures for a batch of parameter dicts (leading axis)."""
  return jax.vmap(lambda p: _draw_one(p, image_size, surface))(batch)


def _draw_one(p, image_size: int, surface: str):
  """One picture [H, W, 3] uint8 from its parameters."""
  p = {k: (v.astype(jnp.float32) if v.dtype == jnp.float64 else v) for k, v in p.items()}
  m = image_size
  coords = (jnp.arange(m, dtype=jnp.float32) + 0.5) / m * 2 - 1
  x = coords[None, :] - p["centre"][0]
  y = coords[:, None] - p["centre"][1]
  cos, sin = jnp.cos(p["rotation"]), jnp.sin(p["rotation"])
  u = (x * cos + y * sin) / p["scale"]  # stone frame: the outline's max radius is 1
  v = (-x * sin + y * cos) / p["scale"]
  f, phi, pos = _gauge(u, v, p["radius"])

  # Light direction in the stone's own frame.
  lx = p["light"][0] * cos + p["light"][1] * sin
  ly = -p["light"][0] * sin + p["light"][1] * cos
  light = (lx, ly, jnp.sqrt(1 - lx * lx - ly * ly))

  # body: shade of the stone's colour in [0, 1]; glint: blend towards white.
  if surface == "cabochon":
    body, glint, band = _cabochon(p, f, u, v, light)
  else:
    body, glint, band = _faceted(p, f, phi, pos, light, step=surface == "step")
  colour = p["colour"] + (p["colour2"] - p["colour"]) * band[..., None]
  stone = colour * body[..., None]
  stone = stone + (1 - stone) * glint[..., None]

  # The same outline, a little lower, casts a soft shadow on light backgrounds;
  # dark backgrounds get a faint glow instead.
  fs, _, _ = _gauge(u + sin / p["scale"] * 0.06, v - cos / p["scale"] * 0.06, p["radius"])
  dark = p["bg_kind"] == 2
  level = p["bg_level"] + p["bg_gradient"] * y
  level = jnp.where(dark, level + 0.06 * jnp.exp(-(x * x + y * y) / 0.5),
                    level * (1 - p["shadow"] * jnp.exp(-jnp.maximum(0.0, fs - 0.9) ** 2 / 0.02)))
  background = level[..., None] + p["bg_tint"]

  # Anti-aliased outline: coverage from the gauge's distance to 1, in pixels.
  pixels_per_unit = p["radius"][pos] * p["scale"] * (image_size / 2)
  coverage = jnp.clip(0.5 + (1 - f) * pixels_per_unit, 0.0, 1.0)[..., None]
  image = background + (stone - background) * coverage
  return jnp.clip(image * 255 + 0.5, 0, 255).astype(jnp.uint8)


def _faceted(p, f, phi, pos, light, step: bool):
  """Cut stones: (body shade, glint, band) per pixel."""
  lx, ly, lz = light
  if step:
    # Step cut (emerald, princess): rings of the outline's own shape, split
    # into its sides.
    side = p["sides"][pos]
    ring = (jnp.minimum(f, 0.999) * 7).astype(jnp.int32)
    facet = 100 + ring * 8 + side
    pattern = 36 + (ring & 1) * 8 + side
    azimuth = p["side_angle"][side]
    tilt = jnp.where(ring >= 4, 0.25 + 0.12 * (ring - 4), 0.0)
  else:
    # Brilliant layout in (gauge, angle): sector j, position w in it, distance
    # wc to its nearest boundary; a polygonal table, then star facets
    # (triangles on the table's edges), kites (on sector boundaries) and
    # upper-girdle pairs.
    n = p["sectors"]
    a = (phi - p["sector_phase"]) * (n / (2 * jnp.pi))
    a = jnp.where(a < 0, a + n, a)
    j = jnp.minimum(a.astype(jnp.int32), n - 1)
    w = a - j
    wc = jnp.minimum(w, 1 - w)
    table = p["table_size"] * jnp.cos(jnp.pi / n) / jnp.cos((w - 0.5) * (2 * jnp.pi / n))
    s = (f - table) / (1 - table)
    in_table, star, kite = s < 0, s < wc, s < 1 - wc
    half = (w >= 0.5).astype(jnp.int32)
    k = jnp.round(a).astype(jnp.int32)
    k = jnp.where(k >= n, 0, k)
    facet = jnp.where(star, 40 + j, jnp.where(kite, 60 + k, 80 + 2 * j + half))
    # Brilliance pattern: mirror-symmetric facets share most of their brightness.
    pattern = jnp.where(star, 20 + (j & 1),
                        jnp.where(kite, 24 + (k & 1), 28 + ((2 * j + half) & 3)))
    azimuth = jnp.where(star, j + 0.5, jnp.where(kite, k, j + 0.25 + 0.5 * half))
    azimuth = azimuth * (2 * jnp.pi / n) + p["sector_phase"]
    tilt = jnp.where(star, 0.35, jnp.where(kite, 0.55, 0.8))
    # Seen through the table: the pavilion's reflections, 2n wedges.
    wedge = (a * 2).astype(jnp.int32)
    facet = jnp.where(in_table, 1 + wedge, facet)
    pattern = jnp.where(in_table, 32 + (wedge & 3), pattern)
    tilt = jnp.where(in_table, 0.0, tilt)

  values = p["facet_values"]
  value = 0.6 * values[pattern] + 0.4 * values[facet]
  nx, ny, nz = jnp.sin(tilt) * jnp.cos(azimuth), jnp.sin(tilt) * jnp.sin(azimuth), jnp.cos(tilt)
  ndl = nx * lx + ny * ly + nz * lz
  spec = jnp.maximum(0.0, 2 * ndl * nz - lz) ** 24  # light reflected towards the viewer
  body = jnp.minimum((0.4 + 0.9 * value * value) * (0.65 + 0.5 * jnp.maximum(0.0, ndl)), 1.0)
  glint = jnp.clip(1.5 * spec + 4.0 * jnp.maximum(0.0, value - 0.85), 0, 1)
  # Thin bright facet edges and a darker girdle give the cut its structure.
  edge = (facet != jnp.roll(facet, 1, axis=0)) | (facet != jnp.roll(facet, 1, axis=1))
  glint = jnp.where(edge, glint + (1 - glint) * 0.12, glint)
  girdle = 1 - 0.5 * _smoothstep((f - 0.95) / 0.05)
  # Colourless stones: contrast without hue (their colour is near white).
  body = jnp.where(p["colourless"] > 0, 0.15 + 0.85 * value ** 1.5, body)
  return body * girdle, glint * girdle, jnp.zeros_like(f)


def _cabochon(p, f, u, v, light):
  """Smooth domes: (body shade, glint, band) with a highlight, bands or a cat's eye."""
  lx, ly, lz = light
  f = jnp.minimum(f, 1.0)
  h = jnp.sqrt(1 - f * f)
  r = jnp.maximum(jnp.sqrt(u * u + v * v), 1e-6)
  nx, ny, nz = f * u / r, f * v / r, h + 0.15
  norm = jnp.sqrt(nx * nx + ny * ny + nz * nz)
  ndl = (nx * lx + ny * ly + nz * lz) / norm
  rz = 2 * ndl * nz / norm - lz
  spec = jnp.maximum(0.0, rz) ** 60
  sheen = jnp.maximum(0.0, rz) ** 6

  along = u * jnp.cos(p["band_angle"]) + v * jnp.sin(p["band_angle"])
  phase = p["band_phase"]
  warp = (0.22 * jnp.sin(3.1 * u + 1.7 * v + phase[0]) +
          0.12 * jnp.cos(5.3 * v - 2.1 * u + phase[1]))
  coord = jnp.where(p["band_concentric"] > 0, f, along) + warp
  band = _smoothstep(0.5 + 1.5 * jnp.sin(p["band_freq"] * coord + phase[2]))
  body = 0.3 + 0.8 * jnp.maximum(0.0, ndl) + 0.25 * p["translucent"] * h
  eye = p["cats_eye"] * jnp.exp(-(along / 0.06) ** 2) * h * 0.7
  glint = jnp.clip(0.9 * spec + 0.18 * sheen + eye, 0, 1)
  return jnp.minimum(body, 1.0), glint, band
