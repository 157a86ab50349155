"""The population model: a mixture of Gaussian populations in loading space, the generative model of networks
of any size, with THE samplers of rnnscope.

- ``PopulationModel.sample`` / ``sample_many`` draw networks (NumPy, from ``rng``): resampling and network design;
- ``reparametrised_loadings`` is the one differentiable sampler (loadings = mean_p + z factor_p^T): it drives
  ``PopulationSampler`` (a model whose means and Cholesky factors train) and ``rnnscope.design.fit_design``
  (a specification whose few named parameters train).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rnnscope._validation import as_generator, check_array, check_int, check_nonnegative, check_probability
from rnnscope.analysis._loadings import BLOCKS, check_labels, loading_layout, loadings, weights_from_values
from rnnscope.analysis._mixtures import PopulationFit
from rnnscope.errors import RnnscopeError
from rnnscope.models import LowRankBatch, LowRankWeights

__all__ = ["PopulationModel", "PopulationSampler", "reparametrised_loadings"]


def _psd_sqrt(covariance: np.ndarray) -> np.ndarray:
    """A (d, d) factor L with L L^T = covariance (symmetric PSD; tiny negative eigenvalues clipped)."""
    eigenvalues, vectors = np.linalg.eigh(covariance)
    return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def population_counts(fractions: np.ndarray, size: int) -> np.ndarray:
    """Neurons per population: ``fractions * size`` rounded by largest remainders (sums to size)."""
    exact = fractions * size
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: size - counts.sum()]] += 1
    return counts


@dataclass(frozen=True, eq=False)
class PopulationModel:
    """A mixture of Gaussian populations in loading space: the generative model of networks of any size.

    fractions: (P,) sum to 1; means: (P, columns); covariances: (P, columns, columns) symmetric PSD;
    columns: loading labels (see ``loading_columns``); noise_std, alpha: dynamics of the networks it makes.
    Also the mixture the mean-field flow reads (``rnnscope.analysis._latent``), through ``moments`` and ``overlaps``.
    """

    fractions: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    columns: tuple[str, ...]
    noise_std: float = 0.05
    alpha: float = 0.2

    def __post_init__(self) -> None:
        columns = tuple(self.columns)
        loading_layout(columns)
        fractions = check_array(self.fractions, "fractions", ndim=1)
        count, dims = fractions.shape[0], len(columns)
        means = check_array(self.means, "means", shape=(count, dims))
        covariances = check_array(self.covariances, "covariances", shape=(count, dims, dims))
        if count < 1:
            raise RnnscopeError("fractions: need at least one population")
        if np.any(fractions < 0) or abs(fractions.sum() - 1.0) > 1e-6:
            raise RnnscopeError(f"fractions: must be >= 0 and sum to 1, got {fractions.tolist()}")
        for p, cov in enumerate(covariances):
            scale = max(1.0, float(np.abs(cov).max()))
            if not np.allclose(cov, cov.T, atol=1e-8 * scale):
                raise RnnscopeError(f"covariances[{p}]: not symmetric")
            smallest = float(np.linalg.eigvalsh(cov).min())
            if smallest < -1e-8 * scale:
                raise RnnscopeError(f"covariances[{p}]: not positive semidefinite (smallest eigenvalue {smallest:.3g})")
        check_nonnegative(self.noise_std, "noise_std")
        check_probability(self.alpha, "alpha")
        for name, value in (("fractions", fractions / fractions.sum()), ("means", means), ("covariances", covariances)):
            value = value.copy()
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "columns", columns)

    @property
    def populations(self) -> int:
        return int(self.fractions.shape[0])

    @property
    def rank(self) -> int:
        return loading_layout(self.columns)["m"]

    @property
    def inputs(self) -> int:
        return loading_layout(self.columns)["w_in"]

    @property
    def outputs(self) -> int:
        return loading_layout(self.columns)["w_out"]

    # -- moments --------------------------------------------------------------------------------------------------
    def block(self, name: str) -> np.ndarray:
        """(count,) indices into ``columns`` of the block ``name`` ("w_in", "n", "m" or "w_out"), in label order."""
        if name not in BLOCKS:
            raise RnnscopeError(f"name: {name!r} is not one of {BLOCKS}")
        return np.array([i for i, c in enumerate(self.columns) if c.startswith(name + "[")], dtype=int)

    def moments(self, blocks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The mixture restricted to ``blocks`` in the order given (e.g. ``("m", "n", "w_in")``):
        means (P, k) and covariances (P, k, k), k the number of columns of those blocks."""
        keep = np.concatenate([self.block(name) for name in blocks]) if len(blocks) else np.zeros(0, dtype=int)
        return self.means[:, keep], self.covariances[:, keep][:, :, keep]

    def overlaps(self) -> np.ndarray:
        """(rank, rank): ``<n_i m_j>`` over the mixture, second moments including the means (the overlaps of a
        network of infinite size drawn from the model)."""
        n, m = self.block("n"), self.block("m")
        second = self.covariances[:, n][:, :, m] + self.means[:, n, None] * self.means[:, None, m]
        return np.einsum("p,pij->ij", self.fractions, second)

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_weights(cls, weights: LowRankWeights, labels: np.ndarray | None = None) -> PopulationModel:
        """Empirical fractions, means and covariances (ddof = 1) of the labelled neurons of a network.

        labels: (size,) integer labels 0..P-1; None puts every neuron in one Gaussian.
        """
        points = loadings(weights)
        labels = np.zeros(points.size, dtype=int) if labels is None else check_labels(labels, points.size)
        count = int(labels.max()) + 1
        fractions, means, covariances = [], [], []
        for p in range(count):
            members = points.values[labels == p]
            if members.shape[0] < 2:
                raise RnnscopeError(f"labels: population {p} has {members.shape[0]} neuron(s); need at least 2")
            fractions.append(members.shape[0] / points.size)
            means.append(members.mean(axis=0))
            covariances.append(np.atleast_2d(np.cov(members, rowvar=False)))
        return cls(
            fractions=np.asarray(fractions), means=np.asarray(means), covariances=np.asarray(covariances),
            columns=points.columns, noise_std=weights.noise_std, alpha=weights.alpha,
        )

    @classmethod
    def from_fit(
        cls, fit: PopulationFit, populations: int | None = None, *, noise_std: float = 0.05, alpha: float = 0.2
    ) -> PopulationModel:
        """The fitted mixture with ``populations`` components (default: the BIC choice)."""
        row = fit._row(fit.chosen if populations is None else populations, "populations")
        return cls(
            fractions=fit.fractions[row], means=fit.means[row], covariances=fit.covariances[row],
            columns=fit.columns, noise_std=noise_std, alpha=alpha,
        )

    # -- sampling -------------------------------------------------------------------------------------------------
    def labels(self, size: int) -> np.ndarray:
        """(size,) population of each neuron of a network of ``size`` drawn from this model: population p holds
        ``round(fraction_p * size)`` neurons (largest remainders), in order."""
        return np.repeat(np.arange(self.populations), population_counts(self.fractions, check_int(size, "size", minimum=1)))

    def sample_loadings(
        self, size: int, *, rng: np.random.Generator | int, zero_mean: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw one network's loadings: values (size, columns) and labels (size,).

        Each population gets ``round(fraction * size)`` neurons (largest remainders), drawn from
        N(mean, covariance), or N(0, covariance) with ``zero_mean`` (the paper's convention; beware that it
        drops the between-population part of the covariance, which can flip a readout's sign when the
        populations split a unimodal cloud).
        """
        values, labels = self._draw(1, size, rng=rng, zero_mean=zero_mean)
        return values[0], labels

    def sample(self, size: int, *, rng: np.random.Generator | int, zero_mean: bool = False) -> LowRankWeights:
        """One network of ``size`` neurons (h0 = 0)."""
        values, _ = self.sample_loadings(size, rng=rng, zero_mean=zero_mean)
        return weights_from_values(values, self.columns, noise_std=self.noise_std, alpha=self.alpha, h0=None)

    def sample_many(
        self, networks: int, size: int, *, rng: np.random.Generator | int, zero_mean: bool = False
    ) -> LowRankBatch:
        """``networks`` independent networks of ``size`` neurons, stacked for one batched simulation."""
        networks = check_int(networks, "networks", minimum=1)
        values, _ = self._draw(networks, size, rng=rng, zero_mean=zero_mean)
        counts = loading_layout(self.columns)
        blocks, start = {}, 0
        for block in BLOCKS:
            blocks[block] = values[:, :, start : start + counts[block]]
            start += counts[block]
        return LowRankBatch(
            m=blocks["m"], n=blocks["n"], w_in=blocks["w_in"], w_out=blocks["w_out"], h0=np.zeros(values.shape[:2]),
            noise_std=self.noise_std, alpha=self.alpha,
        )

    def _draw(
        self, networks: int, size: int, *, rng: np.random.Generator | int, zero_mean: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """values (networks, size, columns), labels (size,) shared by all networks."""
        size = check_int(size, "size", minimum=1)
        rng = as_generator(rng, name="rng")
        counts = population_counts(self.fractions, size)
        labels = self.labels(size)
        dims = len(self.columns)
        values = np.empty((networks, size, dims))
        start = 0
        for p, count in enumerate(counts):
            factor = _psd_sqrt(self.covariances[p])
            draws = rng.standard_normal((networks, count, dims)) @ factor.T
            values[:, start : start + count] = draws if zero_mean else draws + self.means[p]
            start += count
        return values, labels

    def sampler(self, *, zero_mean: bool = False, dtype: torch.dtype = torch.float64) -> PopulationSampler:
        """The same mixture as a differentiable, trainable sampler (see ``PopulationSampler``)."""
        return PopulationSampler(self, zero_mean=zero_mean, dtype=dtype)

    def to_dict(self) -> dict:
        return {
            "columns": list(self.columns),
            "fractions": self.fractions.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
            "noise_std": float(self.noise_std),
            "alpha": float(self.alpha),
        }


def _cholesky(covariance: np.ndarray) -> np.ndarray:
    """(d, d) lower-triangular L with L L^T = covariance + a jitter that makes it positive definite (a singular
    covariance gets the smallest jitter 1e-10 .. 1e-2 times its scale that a Cholesky factorisation accepts)."""
    scale = max(1.0, float(np.abs(covariance).max()))
    eye = np.eye(covariance.shape[0])
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
        try:
            return np.linalg.cholesky(covariance + jitter * scale * eye)
        except np.linalg.LinAlgError:
            continue
    raise RnnscopeError("covariances: no Cholesky factor even with a jitter of 1e-2 times the scale")


class PopulationSampler(torch.nn.Module):
    """A PopulationModel as a differentiable sampler whose parameters train by gradient descent.

    Population p's loadings are ``mean_p + z L_p^T`` (reparametrised samples) with z standard normal and L_p
    lower triangular with a positive diagonal ``exp(log_diagonal_p)``, so ``L_p L_p^T`` is always a valid
    covariance. Trainable parameters: ``means`` (P, columns) (frozen at zero with ``zero_mean``), ``lower``
    (P, columns, columns) (only its strictly lower triangle is used) and ``log_diagonal`` (P, columns).
    Fractions, columns and dynamics are fixed; population p holds neurons ``PopulationModel.labels(size) == p``,
    as ``PopulationModel.sample`` does. Starts at the model (a singular covariance gets a tiny jitter).
    """

    def __init__(self, model: PopulationModel, *, zero_mean: bool = False, dtype: torch.dtype = torch.float64):
        super().__init__()
        if not isinstance(model, PopulationModel):
            raise RnnscopeError(f"model: expected a PopulationModel, got {type(model).__name__}")
        self.model = model
        self.zero_mean = bool(zero_mean)
        factors = np.stack([_cholesky(c) for c in model.covariances])  # (P, D, D)
        means = np.zeros_like(model.means) if zero_mean else model.means
        self.means = torch.nn.Parameter(torch.tensor(means, dtype=dtype), requires_grad=not zero_mean)
        self.lower = torch.nn.Parameter(torch.tensor(np.tril(factors, -1), dtype=dtype))
        diagonal = np.diagonal(factors, axis1=1, axis2=2)
        self.log_diagonal = torch.nn.Parameter(torch.tensor(np.log(diagonal), dtype=dtype))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.model.columns

    def factors(self) -> torch.Tensor:
        """(P, columns, columns) lower-triangular factors L_p."""
        return torch.tril(self.lower, -1) + torch.diag_embed(torch.exp(self.log_diagonal))

    def covariances(self) -> torch.Tensor:
        """(P, columns, columns) L_p L_p^T."""
        factors = self.factors()
        return factors @ factors.transpose(-1, -2)

    def normals(self, size: int, *, generator: torch.Generator, networks: int | None = None) -> torch.Tensor:
        """Standard normals z: (size, columns), or (networks, size, columns)."""
        size = check_int(size, "size", minimum=1)
        shape = (size, len(self.columns)) if networks is None else (
            check_int(networks, "networks", minimum=1), size, len(self.columns))
        return torch.randn(shape, generator=generator, dtype=self.lower.dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Loadings (..., size, columns) from standard normals z (..., size, columns); differentiable in the
        parameters (``reparametrised_loadings``). Rows are grouped by population in order (``labels(size)``)."""
        return reparametrised_loadings(self.means, self.factors(), self.model.fractions, z)

    def labels(self, size: int) -> np.ndarray:
        """(size,) population of each row of a draw of ``size`` neurons."""
        return self.model.labels(size)

    def to_model(self) -> PopulationModel:
        """The current parameters as a PopulationModel (covariances L L^T, same fractions and dynamics)."""
        with torch.no_grad():
            means = self.means.detach().cpu().numpy().astype(np.float64)
            covariances = self.covariances().detach().cpu().numpy().astype(np.float64)
        covariances = (covariances + covariances.transpose(0, 2, 1)) / 2
        return PopulationModel(
            fractions=self.model.fractions, means=means, covariances=covariances, columns=self.model.columns,
            noise_std=self.model.noise_std, alpha=self.model.alpha,
        )


def reparametrised_loadings(
    means: torch.Tensor | Sequence[torch.Tensor],
    factors: torch.Tensor | Sequence[torch.Tensor],
    fractions: np.ndarray,
    z: torch.Tensor,
) -> torch.Tensor:
    """THE differentiable sampler of loadings: population p's rows are ``mean_p + z_p factor_p^T``.

    means: (P, columns), or P tensors (columns,); factors: (P, columns, k), or P tensors (columns, k_p), with
    covariance_p = factor_p factor_p^T; fractions: (P,) fixed; z: (..., size, width) standard normals with
    width >= every k_p. Population p takes the rows ``PopulationModel.labels(size) == p`` (in order) and the
    first k_p columns of z. Returns loadings (..., size, columns), differentiable in means and factors.
    """
    if len(means) != len(factors) or len(means) != len(fractions):
        raise RnnscopeError(
            f"means, factors, fractions: expected one per population, got {len(means)}, {len(factors)}, {len(fractions)}"
        )
    counts = [int(c) for c in population_counts(np.asarray(fractions, dtype=np.float64), int(z.shape[-2]))]
    pieces = [
        means[p] + draws[..., : factors[p].shape[-1]] @ factors[p].T
        for p, draws in enumerate(torch.split(z, counts, dim=-2))
    ]
    return torch.cat(pieces, dim=-2)
