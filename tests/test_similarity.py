"""Representation distances against their textbook definitions and invariances, across seeds."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes, sqrtm, subspace_angles

from rnnscope.analysis import (
    CCADistance,
    LinearCKADistance,
    MDSEmbedding,
    ProcrustesDistance,
    PWCCADistance,
    ShapeMetric,
    SVCCADistance,
    check_pair,
    mds_embedding,
    pairwise_distances,
)
from rnnscope.errors import NotFittedError, RnnscopeError

SEEDS = [0, 1, 2, 3, 4]


def all_metrics() -> list:
    return [
        CCADistance(),
        CCADistance(score_method="angular"),
        SVCCADistance(),
        PWCCADistance(),
        ShapeMetric(alpha=0.0),
        ShapeMetric(alpha=0.5),
        ShapeMetric(alpha=1.0, score_method="euclidean"),
        ProcrustesDistance(),
        ProcrustesDistance(score_method="angular"),
        LinearCKADistance(),
        LinearCKADistance(score_method="angular"),
    ]


def network(rng: np.random.Generator, conditions: int = 60, size: int = 8, latent: int = 5) -> np.ndarray:
    """Low-dimensional trajectories mixed into ``size`` units, plus noise and offsets."""
    z = rng.normal(size=(conditions, latent))
    return z @ rng.normal(size=(latent, size)) + 0.3 * rng.normal(size=(conditions, size)) + rng.normal(size=size)


def rotation(rng: np.random.Generator, size: int) -> np.ndarray:
    Q = np.linalg.qr(rng.normal(size=(size, size)))[0]
    if rng.random() < 0.5:  # include reflections
        Q[:, 0] *= -1
    return Q


def centred(X: np.ndarray) -> np.ndarray:
    return X - X.mean(axis=0)


def inv_sqrt(C: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.real(sqrtm(C)))


# -- contract ------------------------------------------------------------------------------------------------------
def test_check_pair_quotes_both_shapes() -> None:
    with pytest.raises(RnnscopeError, match=r"X \(50, 4\) and Y \(40, 4\)"):
        check_pair(np.zeros((50, 4)), np.zeros((40, 4)))
    with pytest.raises(RnnscopeError, match=r"X \(50,\) and Y \(50, 3\)"):
        check_pair(np.zeros(50), np.zeros((50, 3)))
    bad = np.ones((10, 2))
    bad[3, 1] = np.nan
    with pytest.raises(RnnscopeError, match="Y: contains NaN"):
        check_pair(np.ones((10, 2)), bad)
    for metric in all_metrics():
        with pytest.raises(RnnscopeError, match=r"X \(30, 3\) and Y \(31, 3\)"):
            metric.fit(np.zeros((30, 3)), np.zeros((31, 3)))


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ShapeMetric(alpha=1.5), "alpha"),
        (lambda: ShapeMetric(alpha=-0.1), "alpha"),
        (lambda: ShapeMetric(score_method="cosine"), "score_method"),
        (lambda: CCADistance(score_method="euclidean"), "score_method"),
        (lambda: CCADistance(center="yes"), "center"),
        (lambda: SVCCADistance(variance=0.0), "variance"),
        (lambda: SVCCADistance(variance=1.2), "variance"),
        (lambda: PWCCADistance(symmetric=1), "symmetric"),
        (lambda: LinearCKADistance(score_method="one minus"), "score_method"),
        (lambda: ProcrustesDistance(score_method="procrustes"), "score_method"),
    ],
)
def test_hyperparameters_are_checked_by_name(make, field: str) -> None:
    with pytest.raises(RnnscopeError, match=field):
        make()


def test_bad_values_are_quoted_with_the_allowed_ones() -> None:
    with pytest.raises(RnnscopeError, match=r"'angular', 'euclidean', got 'cosine'"):
        ShapeMetric(score_method="cosine")
    with pytest.raises(RnnscopeError, match=r"\[0, 1\], got 1.5"):
        ShapeMetric(alpha=1.5)


@pytest.mark.parametrize("metric", all_metrics(), ids=repr)
def test_fit_score_contract(metric) -> None:
    rng = np.random.default_rng(0)
    X, Y = network(rng, size=6), network(rng, size=9)
    with pytest.raises(NotFittedError):
        metric.score(X, Y)
    assert issubclass(NotFittedError, ValueError)
    assert metric.fit(X, Y) is metric
    learned = [k for k in vars(metric) if k.endswith("_")]
    assert "x_mean_" in learned and "y_mean_" in learned
    value = metric.score(X, Y)
    assert type(value) is float and value >= 0 and value == metric.fit_score(X, Y)
    with pytest.raises(RnnscopeError, match="fitted with size 6"):
        metric.score(X[:, :5], Y)
    assert metric.fit_score(X, X) == pytest.approx(0.0, abs=1e-6)


# -- CCA -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_cca_is_zero_under_any_invertible_linear_map(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = network(rng, size=7)
    A = rng.normal(size=(7, 7))
    Y = X @ A + rng.normal(size=7)
    for metric in (CCADistance(), CCADistance(score_method="angular"), PWCCADistance()):
        assert metric.fit_score(X, Y) == pytest.approx(0.0, abs=1e-6)
    other = network(rng, size=7)
    assert CCADistance().fit_score(X, other) > 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_canonical_correlations_are_cosines_of_principal_angles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=6), network(rng, size=9, latent=7)
    cca = CCADistance().fit(X, Y)
    cosines = np.sort(np.cos(subspace_angles(centred(X), centred(Y))))[::-1]
    np.testing.assert_allclose(cca.canonical_correlations_, cosines, atol=1e-10)
    assert cca.fit_score(X, Y) == pytest.approx(1 - cosines.mean())
    # the same through whitening by the covariance (Sigma_xx^-1/2 Sigma_xy Sigma_yy^-1/2)
    Xc, Yc = centred(X), centred(Y)
    T = inv_sqrt(Xc.T @ Xc) @ (Xc.T @ Yc) @ inv_sqrt(Yc.T @ Yc)
    np.testing.assert_allclose(np.linalg.svd(T, compute_uv=False), cosines, atol=1e-8)
    # the canonical variates of the fit data are orthonormal and paired by the correlations
    u, v = Xc @ cca.x_weights_, Yc @ cca.y_weights_
    np.testing.assert_allclose(u.T @ u, np.eye(6), atol=1e-10)
    np.testing.assert_allclose(np.diag(u.T @ v), cosines, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_angular_shape_metric_at_alpha_zero_is_angular_cca(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=6), network(rng, size=6)
    rho = CCADistance().fit(X, Y).canonical_correlations_
    assert ShapeMetric(alpha=0.0).fit_score(X, Y) == pytest.approx(np.arccos(rho.mean()), abs=1e-9)
    assert CCADistance(score_method="angular").fit_score(X, Y) == pytest.approx(np.arccos(rho.mean()), abs=1e-9)


def test_svcca_keeps_the_components_explaining_99_percent() -> None:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(200, 3)) * np.array([5.0, 3.0, 2.0])
    X = latent @ np.linalg.qr(rng.normal(size=(10, 10)))[0][:3] + 1e-3 * rng.normal(size=(200, 10))
    Y = network(rng, conditions=200, size=12, latent=12)
    svcca = SVCCADistance().fit(X, Y)
    assert svcca.x_weights_.shape == (10, 3)  # 3 directions explain > 99 % of X's variance
    kept_y = np.searchsorted(np.cumsum(np.linalg.svd(centred(Y), compute_uv=False) ** 2) / np.sum(centred(Y) ** 2), 0.99) + 1
    assert svcca.canonical_correlations_.shape == (min(3, kept_y),)
    # with every direction kept, SVCCA is CCA
    assert SVCCADistance(variance=1.0).fit_score(X, Y) == pytest.approx(CCADistance().fit_score(X, Y))


@pytest.mark.parametrize("seed", SEEDS)
def test_svcca_is_invariant_to_rotation_and_scaling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=8), network(rng, size=10)
    base = SVCCADistance().fit_score(X, Y)
    assert SVCCADistance().fit_score(2.5 * X @ rotation(rng, 8), Y) == pytest.approx(base, abs=1e-9)
    assert SVCCADistance().fit_score(X, X @ rotation(rng, 8) * 0.1 + 4.0) == pytest.approx(0.0, abs=1e-6)


def pwcca_by_hand(X: np.ndarray, Y: np.ndarray) -> float:
    """Morcos et al. 2018 with X's weights, through the covariance route: whiten, SVD, variates, QR, weights."""
    Xc, Yc = centred(X), centred(Y)
    Wx, Wy = inv_sqrt(Xc.T @ Xc), inv_sqrt(Yc.T @ Yc)
    U, rho, _ = np.linalg.svd(Wx @ Xc.T @ Yc @ Wy)
    k = min(X.shape[1], Y.shape[1])
    h = Xc @ Wx @ U[:, :k]  # canonical variates of X
    P = np.linalg.qr(h)[0]
    alpha = np.array([sum(abs(P[:, i] @ Xc[:, j]) for j in range(X.shape[1])) for i in range(k)])
    alpha /= alpha.sum()
    return 1.0 - float(alpha @ rho[:k])


@pytest.mark.parametrize("seed", SEEDS)
def test_pwcca_matches_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=5), network(rng, size=8)
    one_sided = PWCCADistance(symmetric=False)
    assert one_sided.fit_score(X, Y) == pytest.approx(pwcca_by_hand(X, Y), abs=1e-8)
    assert one_sided.fit_score(Y, X) == pytest.approx(pwcca_by_hand(Y, X), abs=1e-8)
    both = PWCCADistance().fit_score(X, Y)
    assert both == pytest.approx((pwcca_by_hand(X, Y) + pwcca_by_hand(Y, X)) / 2, abs=1e-8)
    fitted = one_sided.fit(X, Y)
    assert fitted.x_projection_weights_.sum() == pytest.approx(1.0) and np.all(fitted.x_projection_weights_ >= 0)


# -- Procrustes and shape metrics ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_procrustes_is_zero_under_rotation_and_reflection(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = network(rng, size=8)
    Y = X @ rotation(rng, 8) + rng.normal(size=8)
    for metric in (ProcrustesDistance(), ProcrustesDistance("angular"), ShapeMetric(alpha=0.5), ShapeMetric(0.0)):
        assert metric.fit_score(X, Y) == pytest.approx(0.0, abs=1e-6)
    # isotropic scaling: the angular (normalised) form does not see it, the euclidean form does
    assert ProcrustesDistance("angular").fit_score(X, 3.0 * Y) == pytest.approx(0.0, abs=1e-6)
    euclidean = ProcrustesDistance().fit_score(X, 3.0 * Y)
    assert euclidean == pytest.approx(2.0 * np.linalg.norm(centred(X)) / np.sqrt(X.shape[0]), rel=1e-9)
    # a general linear map is seen by both
    Z = X @ rng.normal(size=(8, 8))
    assert ProcrustesDistance("angular").fit_score(X, Z) > 0.05 and ProcrustesDistance().fit_score(X, Z) > 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_procrustes_matches_scipy_orthogonal_procrustes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=7), network(rng, size=7)
    Xc, Yc = centred(X), centred(Y)
    R, _ = orthogonal_procrustes(Yc, Xc)  # the rotation of Y closest to X
    expected = np.linalg.norm(Xc - Yc @ R) / np.sqrt(X.shape[0])
    assert ProcrustesDistance().fit_score(X, Y) == pytest.approx(expected, rel=1e-9)
    cosine = np.sum(Xc * (Yc @ R)) / (np.linalg.norm(Xc) * np.linalg.norm(Yc))
    assert ProcrustesDistance("angular").fit_score(X, Y) == pytest.approx(np.arccos(cosine), abs=1e-9)
    # unequal sizes: the smaller network is padded with zero units
    W = network(rng, size=4)
    padded = np.pad(centred(W), ((0, 0), (0, 3)))
    R, _ = orthogonal_procrustes(padded, Xc)
    assert ProcrustesDistance().fit_score(X, W) == pytest.approx(np.linalg.norm(Xc - padded @ R) / np.sqrt(60), rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_fitted_alignment_transfers_to_held_out_conditions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = network(rng, conditions=120, size=6)
    A, Q = rng.normal(size=(6, 6)), rotation(rng, 6)
    train, test = slice(0, 80), slice(80, 120)
    cca = CCADistance().fit(X[train], X[train] @ A)
    assert cca.score(X[test], X[test] @ A) == pytest.approx(0.0, abs=1e-6)
    procrustes = ProcrustesDistance().fit(X[train], X[train] @ Q)
    assert procrustes.score(X[test], X[test] @ Q) == pytest.approx(0.0, abs=1e-6)
    assert procrustes.score(X[test], X[test] @ rotation(rng, 6)) > 0.05  # a different rotation is not undone


@pytest.mark.parametrize("metric", [ProcrustesDistance("angular"), ShapeMetric(alpha=0.5), ShapeMetric(alpha=0.0),
                                    ProcrustesDistance(), LinearCKADistance(score_method="angular")], ids=repr)
def test_triangle_inequality_on_random_triples(metric) -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        sizes = rng.integers(3, 9, size=3)
        X, Y, Z = (network(rng, conditions=30, size=int(s), latent=3) for s in sizes)
        # near-collinear triples are where a non-metric would fail: make Z close to a mix of X and Y's units
        if rng.random() < 0.5:
            Z = np.pad(X, ((0, 0), (0, 8)))[:, : sizes[2]] + 0.5 * np.pad(Y, ((0, 0), (0, 8)))[:, : sizes[2]]
        xy, yz, xz = metric.fit_score(X, Y), metric.fit_score(Y, Z), metric.fit_score(X, Z)
        assert xz <= xy + yz + 1e-9


# -- CKA -------------------------------------------------------------------------------------------------------------
def cka_by_loops(X: np.ndarray, Y: np.ndarray) -> float:
    """HSIC(K, L) = tr(K H L H) / (m - 1)^2 with linear kernels, written out element by element."""
    m = X.shape[0]
    K = [[sum(X[i, k] * X[j, k] for k in range(X.shape[1])) for j in range(m)] for i in range(m)]
    L = [[sum(Y[i, k] * Y[j, k] for k in range(Y.shape[1])) for j in range(m)] for i in range(m)]

    def centre(G):
        rows = [sum(G[i]) / m for i in range(m)]
        cols = [sum(G[i][j] for i in range(m)) / m for j in range(m)]
        total = sum(rows) / m
        return [[G[i][j] - rows[i] - cols[j] + total for j in range(m)] for i in range(m)]

    def hsic(A, B):
        Ac, Bc = centre(A), centre(B)
        return sum(Ac[i][j] * Bc[j][i] for i in range(m) for j in range(m)) / (m - 1) ** 2

    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cka_equals_the_hsic_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, conditions=25, size=4, latent=3), network(rng, conditions=25, size=6, latent=3)
    expected = cka_by_loops(X, Y)
    cka = LinearCKADistance().fit(X, Y)
    assert cka.similarity_ == pytest.approx(expected, rel=1e-9)
    assert cka.score(X, Y) == pytest.approx(1 - expected, abs=1e-12)
    assert LinearCKADistance(score_method="angular").fit_score(X, Y) == pytest.approx(np.arccos(expected), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_cka_invariant_to_orthogonal_maps_and_isotropic_scaling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=8), network(rng, size=5)
    base = LinearCKADistance().fit_score(X, Y)
    moved = 0.2 * X @ rotation(rng, 8) + 7.0
    assert LinearCKADistance().fit_score(moved, Y) == pytest.approx(base, abs=1e-12)
    assert LinearCKADistance().fit_score(X, moved) == pytest.approx(0.0, abs=1e-12)
    assert LinearCKADistance().fit_score(X, X @ rng.normal(size=(8, 8))) > 0.01  # not a general linear map


# -- every metric ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", all_metrics() + [PWCCADistance(symmetric=False)], ids=repr)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permuting_units_changes_nothing(metric, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=7), network(rng, size=9)
    base = metric.fit_score(X, Y)
    assert metric.fit_score(X[:, rng.permutation(7)], Y[:, rng.permutation(9)]) == pytest.approx(base, abs=1e-9)


@pytest.mark.parametrize("metric", all_metrics(), ids=repr)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distances_are_symmetric(metric, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X, Y = network(rng, size=6), network(rng, size=10)
    assert metric.fit_score(X, Y) == pytest.approx(metric.fit_score(Y, X), abs=1e-9)


@pytest.mark.parametrize("metric", all_metrics() + [PWCCADistance(symmetric=False)], ids=repr)
def test_pairwise_equals_pairwise_calls_of_score(metric) -> None:
    rng = np.random.default_rng(3)
    networks = [network(rng, conditions=50, size=int(s)) for s in rng.integers(3, 12, size=6)]
    D = pairwise_distances(networks, metric)
    assert D.shape == (6, 6) and np.all(np.diag(D) == 0)
    for i, j in itertools.permutations(range(6), 2):
        assert D[i, j] == pytest.approx(metric.fit_score(networks[i], networks[j]), abs=1e-7)
    if not isinstance(metric, PWCCADistance) or metric.symmetric:
        np.testing.assert_array_equal(D, D.T)
    else:
        assert np.abs(D - D.T).max() > 1e-4


@pytest.mark.parametrize("conditions", [20, 200])  # CKA: Gram-matrix route (20 < size^2), per-pair route (200)
def test_cka_pairwise_routes_equal_score(conditions: int) -> None:
    rng = np.random.default_rng(4)
    networks = [network(rng, conditions=conditions, size=int(s)) for s in rng.integers(8, 13, size=5)]
    for metric in (LinearCKADistance(), LinearCKADistance(score_method="angular")):
        D = pairwise_distances(networks, metric)
        for i, j in itertools.combinations(range(5), 2):
            assert D[i, j] == D[j, i] == pytest.approx(metric.fit_score(networks[i], networks[j]), abs=1e-9)


def test_pairwise_checks_its_inputs() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RnnscopeError, match=r"networks\[2\]: expected \(40, size\)"):
        pairwise_distances([rng.normal(size=(40, 3)), rng.normal(size=(40, 5)), rng.normal(size=(39, 3))], CCADistance())
    with pytest.raises(RnnscopeError, match="metric"):
        pairwise_distances([rng.normal(size=(40, 3))], "cca")
    with pytest.raises(RnnscopeError, match=r"networks\[1\]: has no variance"):
        pairwise_distances([rng.normal(size=(40, 3)), np.ones((40, 3))], ShapeMetric())
    stacked = rng.normal(size=(3, 40, 4))  # (networks, conditions, size) works too
    np.testing.assert_allclose(pairwise_distances(stacked, LinearCKADistance()),
                               pairwise_distances(list(stacked), LinearCKADistance()))


# -- MDS -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_classical_mds_recovers_a_euclidean_configuration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(12, 2))
    D = np.linalg.norm(points[:, None] - points[None], axis=-1)
    embedding = mds_embedding(D)
    assert embedding.coordinates.shape == (12, 2) and len(embedding) == 12 and embedding.stress < 1e-8
    np.testing.assert_allclose(np.linalg.norm(embedding.coordinates[:, None] - embedding.coordinates[None], axis=-1), D,
                               atol=1e-8)
    assert np.all(np.abs(embedding.eigenvalues[2:]) < 1e-8) and embedding.eigenvalues[1] > 0
    again = mds_embedding(D)
    np.testing.assert_array_equal(again.coordinates, embedding.coordinates)  # deterministic, signs fixed
    json.dumps(embedding.to_dict())


def test_smacof_is_seeded_and_fits_the_distances() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(10, 2))
    D = np.linalg.norm(points[:, None] - points[None], axis=-1)
    a = mds_embedding(D, method="smacof", rng=5)
    b = mds_embedding(D, method="smacof", rng=np.random.default_rng(5))
    np.testing.assert_allclose(a.coordinates, b.coordinates)
    assert a.stress < 0.05 and a.method == "smacof"
    with pytest.raises(RnnscopeError, match="rng"):
        mds_embedding(D, method="smacof")


def test_mds_checks_the_distance_matrix() -> None:
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.5], [2.0, 1.5, 0.0]])
    with pytest.raises(RnnscopeError, match="symmetric"):
        mds_embedding(D + np.triu(np.ones((3, 3)), 1))
    with pytest.raises(RnnscopeError, match="diagonal"):
        mds_embedding(D + np.eye(3))
    with pytest.raises(RnnscopeError, match="square"):
        mds_embedding(D[:2])
    with pytest.raises(RnnscopeError, match="dims"):
        mds_embedding(D, dims=4)
    with pytest.raises(RnnscopeError, match="method"):
        mds_embedding(D, method="tsne")
    with pytest.raises(RnnscopeError, match="MDSEmbedding"):
        MDSEmbedding(np.zeros((3, 2)), np.zeros(4), 0.0, "classical")


def test_networks_cluster_by_their_generating_subspace() -> None:
    """End to end: two families of networks (two latent subspaces, random unit mixings) separate in the MDS of
    SVCCA distances, as architectures do in Maheswaranathan et al. 2019."""
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(80, 3)), rng.normal(size=(80, 3))]
    networks, family = [], []
    for k in range(10):
        f = k % 2
        size = int(rng.integers(6, 15))
        networks.append(np.tanh(latents[f] @ rng.normal(size=(3, size))) + 0.05 * rng.normal(size=(80, size)))
        family.append(f)
    D = pairwise_distances(networks, SVCCADistance())
    family = np.array(family)
    same = D[(family[:, None] == family[None]) & ~np.eye(10, dtype=bool)]
    different = D[family[:, None] != family[None]]
    assert same.max() < different.min()
    first_axis = mds_embedding(D).coordinates[:, 0]
    assert np.all(np.sign(first_axis[family == 0]) == -np.sign(first_axis[family == 1])[0])
