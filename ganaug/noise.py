"""The latent noise stream shared by every sampler (torch, ONNX runtime, augment).

Noise is drawn with NumPy, never with torch, so the same ``seed`` gives the same ``z`` vectors --
and therefore the same images -- whether a generator runs in torch or in onnxruntime. The stream
is cut into fixed blocks of :data:`BLOCK_ROWS` rows, each drawn from its own generator seeded by
``(seed, block_index)``, so the rows never depend on the batch size used to consume them, with or
without truncation. ``temperature`` t scales every row by t after any truncation (latent standard
deviation t; ``None`` and 1.0 leave the rows bit for bit as they are). This module must not import
torch.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 1024
#: Largest sampling temperature (latent standard deviation) accepted anywhere: ``(0, MAX_TEMPERATURE]``.
MAX_TEMPERATURE = 4.0


def check_temperature(temperature: float | None) -> float | None:
    """``None`` or a finite float in ``(0, MAX_TEMPERATURE]``; ValueError otherwise."""
    if temperature is None:
        return None
    ok = isinstance(temperature, (int, float, np.integer, np.floating)) and not isinstance(temperature, bool)
    if not ok or not np.isfinite(temperature) or not 0 < temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be a number in (0, {MAX_TEMPERATURE:g}], got {temperature!r}")
    return float(temperature)


def _scaled(z: np.ndarray, temperature: float | None) -> np.ndarray:
    if temperature is None or temperature == 1.0:
        return z
    return z * np.float32(temperature)


def _truncated_block(rng: np.random.Generator, rows: int, z_dim: int, truncation: float | None) -> np.ndarray:
    z = rng.standard_normal((rows, z_dim), dtype=np.float32)
    if truncation is not None:
        bad = np.abs(z) > truncation
        while bad.any():
            z[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
            bad = np.abs(z) > truncation
    return z


def noise_block(
    seed: int, block: int, z_dim: int, truncation: float | None = None, temperature: float | None = None
) -> np.ndarray:
    """Rows ``block * BLOCK_ROWS`` to ``(block + 1) * BLOCK_ROWS - 1`` of the stream for ``seed``:
    standard normal, truncated at ``truncation``, then times ``temperature``."""
    z = _truncated_block(np.random.default_rng([seed, block]), BLOCK_ROWS, z_dim, truncation)
    return _scaled(z, temperature)


class NoiseStream:
    """Consecutive rows of one seeded latent stream.

    ``take(k)`` called repeatedly returns the same rows as one ``sample_noise(seed, total, z_dim)``
    call. ``truncation`` T > 0 redraws every coordinate with ``|z| > T`` (the truncation trick:
    fewer, more typical samples). ``temperature`` t (in ``(0, 4]``) then multiplies every value: a
    latent standard deviation of t (above 1: more varied samples; below 1: more typical ones; ``None``
    or 1.0: the rows unchanged). ``seed=None`` draws a fresh random seed (see :attr:`seed`).
    ``start`` begins at that row (random access: only the blocks actually read are drawn).
    """

    def __init__(
        self,
        seed: int | None,
        z_dim: int,
        truncation: float | None = None,
        start: int = 0,
        temperature: float | None = None,
    ) -> None:
        if z_dim <= 0:
            raise ValueError(f"z_dim must be > 0, got {z_dim}")
        if truncation is not None and truncation <= 0:
            raise ValueError(f"truncation must be > 0, got {truncation}")
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if start < 0:
            raise ValueError(f"start row must be >= 0, got {start}")
        self.seed = int(seed)
        self.z_dim = z_dim
        self.truncation = truncation
        self.temperature = check_temperature(temperature)
        self._block_index, skip = divmod(int(start), BLOCK_ROWS)
        self._buffer = np.empty((0, z_dim), dtype=np.float32)
        if skip:
            first = noise_block(self.seed, self._block_index, z_dim, truncation, self.temperature)
            self._buffer = first[skip:]
            self._block_index += 1

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` rows of the stream, float32 ``[n, z_dim]``."""
        if n < 0:
            raise ValueError(f"number of noise vectors must be >= 0, got {n}")
        parts = []
        while n > 0:
            if len(self._buffer) == 0:
                self._buffer = noise_block(
                    self.seed, self._block_index, self.z_dim, self.truncation, self.temperature
                )
                self._block_index += 1
            chunk, self._buffer = self._buffer[:n], self._buffer[n:]
            parts.append(chunk)
            n -= len(chunk)
        if not parts:
            return np.empty((0, self.z_dim), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(parts))


def sample_noise(
    seed: int | None,
    n: int,
    z_dim: int,
    truncation: float | None = None,
    start: int = 0,
    temperature: float | None = None,
) -> np.ndarray:
    """Rows ``start`` to ``start + n - 1`` of the latent stream for ``seed`` (float32 ``[n, z_dim]``),
    truncated at ``truncation`` and scaled by ``temperature``."""
    return NoiseStream(seed, z_dim, truncation, start=start, temperature=temperature).take(n)
