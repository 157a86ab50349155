"""ePAIRS in rnnscope against the authors' own procedure (Dubreuil, Valente et al. 2022), on their networks, on
networks trained here with the paper's recipe, and on Gaussian clouds (calibration, number of neurons, null draws).

The authors' procedure, re-implemented plainly below with numpy only (``paper_epairs``) from
``src/low_rank_rnns/mixedselectivity.py`` of github.com/adrian-valente/populations_paper_code (commit 1bb6256):

- the connectivity space per task (``training_scripts/*_fig1.py``): rdm ``[wi_full, n, m]`` (rdm_fig1.py:53), romo
  ``[wi, n1, n2, m1, m2]`` (romo_fig1.py:103), raposo / mante ``[wi1..wi4, n, m]`` (raposo_fig1.py:58,
  mante_fig1.py:60), dms ``[wi1, wi2, n1, n2, m1, m2]`` (dms_fig1.py:140): w_in (times its gain si) with m and n,
  never w_out;
- ``epairs(X, 500)`` with the defaults ``n_neighbors=3, cov_type="diag", align_cov=True, whiten=True``
  (mixedselectivity.py:52-66): centre, rotate onto the eigenvectors of X^T X, divide each axis by its std (84-91);
- each point's angle: arccos of the mean cosine to its 3 nearest neighbours in cosine distance, itself excluded
  (26-43, 94-96);
- the null: 500 clouds of as many points from N(0, diag(var of the whitened data)), i.e. N(0, I), NOT whitened
  (46-49, 105-113);
- ``c = (median(null) - median(data)) / std(null)`` over all null angles (115-119); p: two-sided Wilcoxon rank-sum
  of all null angles against the data angles (136, returned at 141-143).

rnnscope's ``epairs`` differs only in whitening each null cloud like the data (``procedure="whitened"``, its
default); ``procedure="paper"`` is the authors' null.

Measured here (2026-12-02, 2 shared cores, N = 512): on 200 Gaussian clouds per dimension, mean c +0.000,
-0.002, +0.002, +0.003 (whitened null) against -0.010, -0.022, -0.026, -0.031 (the authors' null) in 3, 4, 5, 6
dimensions (sem 0.004, sd of c 0.06), rank-sum p < 0.05 for 6-15 % of clouds under either null; 75 rdm networks
trained with ``rnnscope train --task rdm --recipe paper``: (m, n, w_in), the authors' null: median c 0.085
(0.038-0.140), 5/75 at p < 5e-4, 28/75 at p < 0.05, against the paper's 0.072 (0.028-0.126), 5/100, 36/100
(Mann-Whitney p = 0.24); with the whitened null 0.097 (0.051-0.152), 10/75, 35/75; with w_out added 0.165, 37/75,
64/75.

    .venv/bin/python benchmarks/epairs_paper.py [--runs 'DIR/rdm_paper_*'] [--clouds 200] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats
from tqdm import tqdm

from rnnscope.analysis import CONNECTIVITY_BLOCKS, epairs, loadings, neighbour_angles, whiten
from rnnscope.io import load_reference, load_run

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
# the paper's published population study (data/*_results.npz of the authors' repository, arr_0 = p, arr_1 = c):
# p < 0.05/100, p < 0.05 (of 100), median c and quartiles, and the mean and std of c on networks resampled from one
# Gaussian (data/*_lr_c_boot_distr.npy, 1000 values: 10 resamples of each of 100 networks)
PAPER = {
    "rdm": {"p<5e-4": 5, "p<0.05": 36, "c_median": 0.072, "c_q1": 0.028, "c_q3": 0.126, "null_c_mean": -0.003,
            "null_c_std": 0.066},
    "romo": {"p<5e-4": 5, "p<0.05": 35, "c_median": 0.065, "c_q1": 0.023, "c_q3": 0.107, "null_c_mean": -0.055,
             "null_c_std": 0.064},
    "raposo": {"p<5e-4": 9, "p<0.05": 51, "c_median": 0.079, "c_q1": 0.021, "c_q3": 0.127, "null_c_mean": -0.046,
               "null_c_std": 0.063},
    "mante": {"p<5e-4": 100, "p<0.05": 100, "c_median": 1.842, "c_q1": 1.783, "c_q3": 1.928, "null_c_mean": -0.045,
              "null_c_std": 0.064},
}
REFERENCE_NETWORKS = [  # file, task, noise_std
    ("rdm_lr_fig2.pt", "rdm", 0.05), ("romo_rank2_500.pt", "romo", 0.005), ("raposo_lr_fig1.pt", "raposo", 0.05),
    ("mante_lr_fig1.pt", "mante", 0.05), ("mante_rank1_4096.pt", "mante", 0.05),
]


# ------------------------------------------------------------------ the authors' procedure, plainly, numpy only
def paper_angles(points: np.ndarray, k: int = 3) -> np.ndarray:
    """mixedselectivity.neighbors_distance_distr + arccos: mean cosine to the k most aligned other points."""
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    cosines = unit @ unit.T
    np.fill_diagonal(cosines, -np.inf)  # sklearn's first neighbour is the point itself, skipped
    top = -np.partition(-cosines, k - 1, axis=1)[:, :k]
    return np.arccos(np.clip(top.mean(axis=1), -1.0, 1.0))


def paper_whiten(points: np.ndarray) -> np.ndarray:
    """mixedselectivity.epairs lines 84-91: centre, rotate onto the eigenvectors of X^T X, divide by the std."""
    x = points - points.mean(axis=0)
    _, v = np.linalg.eigh(x.T @ x)
    x = x @ v
    return x / x.std(axis=0)


def paper_epairs(points: np.ndarray, *, draws: int, rng: np.random.Generator, k: int = 3) -> dict:
    """mixedselectivity.epairs(X, draws) with its defaults: returns p (rank-sum), c, the medians."""
    x = paper_whiten(points)
    size, dims = x.shape
    std = np.sqrt(np.var(x, axis=0))  # cov_type "diag": the whitened data's variances (ones)
    data = paper_angles(x, k)
    null = np.stack([paper_angles(rng.standard_normal((size, dims)) * std, k) for _ in range(draws)])
    c = (np.median(null) - np.median(data)) / np.std(null)
    return {"p": float(stats.ranksums(null.ravel(), data).pvalue), "c": float(c),
            "median_data": float(np.median(data)), "median_null": float(np.median(null))}


# ------------------------------------------------------------------ helpers
def ours(points: np.ndarray, *, draws: int, rng: np.random.Generator, procedure: str = "whitened") -> dict:
    r = epairs(points, rng=rng, draws=draws, procedure=procedure)
    return {"p": r.p_value, "c": r.c, "p_resampled": r.p_value_resampled}


def space(weights, blocks=CONNECTIVITY_BLOCKS) -> np.ndarray:
    values, _ = loadings(weights).select(blocks)
    return values


def summary(cs: list[float], ps: list[float]) -> dict:
    cs, ps = np.asarray(cs), np.asarray(ps)
    q1, med, q3 = np.percentile(cs, [25, 50, 75])
    return {"networks": len(cs), "c_median": float(med), "c_q1": float(q1), "c_q3": float(q3),
            "c_mean": float(cs.mean()), "c_sem": float(cs.std(ddof=1) / np.sqrt(len(cs))) if len(cs) > 1 else None,
            "p<5e-4": int(np.sum(ps < 5e-4)), "p<0.05": int(np.sum(ps < 0.05))}


def fmt_summary(s: dict) -> str:
    n = s["networks"]
    return (f"{s['c_median']:.3f} ({s['c_q1']:.3f}-{s['c_q3']:.3f}) | {s['c_mean']:.3f} +- {s['c_sem'] or 0:.3f} | "
            f"{s['p<5e-4']}/{n} | {s['p<0.05']}/{n}")


# ------------------------------------------------------------------ sections
def one_reference(x: np.ndarray, name: str, draws: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    if name == "paper":  # the plain numpy version is slow on 4096 points: 20 draws there
        return paper_epairs(x, draws=draws if x.shape[0] <= 1024 else 20, rng=rng)
    return ours(x, draws=draws, rng=rng, procedure="paper" if name == "ours_paper" else "whitened")


def reference_section(draws: int, seeds: int) -> list[dict]:
    rows = []
    for file, task, noise in tqdm(REFERENCE_NETWORKS, desc="reference networks", file=sys.stderr):
        weights = load_reference(REFERENCE / file, noise_std=noise)
        x = space(weights)
        row = {"file": file, "task": task, "size": weights.size, "dims": x.shape[1]}
        for name in ("ours", "ours_paper", "paper"):
            res = [one_reference(x, name, draws, s) for s in range(seeds)]
            row[name] = {"c": float(np.mean([r["c"] for r in res])), "c_sd": float(np.std([r["c"] for r in res])),
                         "p": float(np.median([r["p"] for r in res]))}
        with_out = space(weights, CONNECTIVITY_BLOCKS + ("w_out",))
        r = ours(with_out, draws=draws, rng=np.random.default_rng(0))
        row["ours_with_w_out"] = {"c": r["c"], "p": r["p"]}
        rows.append(row)
    return rows


def runs_section(pattern: str, draws: int, limit: int | None, plain: int) -> dict:
    """c and p of each run under several procedures and spaces. The numpy re-implementation of the authors'
    procedure runs on the first ``plain`` runs only: with the same seed it draws the same null clouds as
    ``epairs(procedure="paper")``, and ``plain_vs_ours_paper_max_abs_c`` shows they agree."""
    dirs = sorted(d for d in glob.glob(pattern) if (Path(d) / "weights.safetensors").exists())[:limit]
    variants = {"ours (m,n,w_in), whitened null": ("ours", CONNECTIVITY_BLOCKS),
                "ours (m,n,w_in), paper's null": ("ours_paper", CONNECTIVITY_BLOCKS),
                "ours (m,n)": ("ours", ("m", "n")),
                "ours (m,n,w_in,w_out)": ("ours", CONNECTIVITY_BLOCKS + ("w_out",))}
    collected: dict[str, dict[str, list]] = {v: {"c": [], "p": []} for v in variants}
    per_run, gaps = [], []
    for i, d in enumerate(tqdm(dirs, desc=f"runs {pattern}", file=sys.stderr)):
        weights = load_run(d).model.weights()
        row = {"run": d}
        for v, (how, blocks) in variants.items():
            r = ours(space(weights, blocks), draws=draws, rng=np.random.default_rng(1000 + i),
                     procedure="paper" if how == "ours_paper" else "whitened")
            collected[v]["c"].append(r["c"])
            collected[v]["p"].append(r["p"])
            row[v] = {"c": r["c"], "p": r["p"]}
        if i < plain:
            r = paper_epairs(space(weights), draws=draws, rng=np.random.default_rng(1000 + i))
            row["plain paper procedure (numpy)"] = {"c": r["c"], "p": r["p"]}
            gaps.append(abs(r["c"] - row["ours (m,n,w_in), paper's null"]["c"]))
        per_run.append(row)
    return {"pattern": pattern, "runs": len(dirs), "plain_runs": len(gaps),
            "plain_vs_ours_paper_max_abs_c": float(max(gaps)) if gaps else None,
            "summary": {v: summary(s["c"], s["p"]) for v, s in collected.items() if s["c"]}, "per_run": per_run}


def null_pool(size: int, dims: int, draws: int, procedure: str, rng: np.random.Generator) -> np.ndarray:
    """(draws, size) null angles of one procedure: "ours" (rnnscope, whitened null), "ours_paper" (rnnscope,
    procedure="paper") or "paper" (the numpy re-implementation). The null of ePAIRS does not depend on the data
    (whitened data has the identity covariance whatever it was), so one pool serves every cloud of a shape."""
    if procedure == "paper":
        return np.stack([paper_angles(rng.standard_normal((size, dims))) for _ in range(draws)])
    cloud = rng.standard_normal((size, dims))
    return epairs(cloud, rng=rng, draws=draws, procedure="paper" if procedure == "ours_paper" else "whitened").null_angles


def test_against(data: np.ndarray, null: np.ndarray) -> tuple[float, float]:
    """c and the rank-sum p of data angles against null angles (the definitions shared by both procedures)."""
    c = (np.median(null) - np.median(data)) / np.std(null)
    return float(c), float(stats.ranksums(null.ravel(), data).pvalue)


def data_angles(x: np.ndarray, procedure: str) -> np.ndarray:
    return paper_angles(paper_whiten(x)) if procedure == "paper" else neighbour_angles(whiten(x))


PROCEDURES = ("ours", "ours_paper", "paper")


def calibration_section(clouds: int, dims_list: list[int], size: int, draws: int, pool: int) -> list[dict]:
    """c and p on clouds drawn from ONE Gaussian (a random covariance per cloud): c should be ~0, p uniform. Each
    cloud is tested against ``draws`` null clouds picked at random from a pool of ``pool`` (drawn once per
    procedure and shape; the pool's median angle is known to ~0.003 in units of c)."""
    rows = []
    for dims in dims_list:
        rng = np.random.default_rng(10 + dims)
        pools = {k: null_pool(size, dims, pool, k, np.random.default_rng(100 + dims)) for k in PROCEDURES}
        got: dict[str, dict[str, list]] = {k: {"c": [], "p": []} for k in PROCEDURES}
        for _ in tqdm(range(clouds), desc=f"calibration dims={dims}", file=sys.stderr):
            x = rng.standard_normal((size, dims)) @ rng.standard_normal((dims, dims))
            pick = rng.choice(pool, size=min(draws, pool), replace=False)
            for key in PROCEDURES:
                c, pv = test_against(data_angles(x, key), pools[key][pick])
                got[key]["c"].append(c)
                got[key]["p"].append(pv)
        row = {"dims": dims, "size": size, "clouds": clouds, "draws": min(draws, pool), "pool": pool}
        for key, v in got.items():
            c, pv = np.array(v["c"]), np.array(v["p"])
            row[key] = {"c_mean": float(c.mean()), "c_sem": float(c.std(ddof=1) / np.sqrt(len(c))),
                        "c_sd": float(c.std(ddof=1)), "fpr_0.05": float(np.mean(pv < 0.05)),
                        "fpr_5e-4": float(np.mean(pv < 5e-4)), "ks_uniform_p": float(stats.kstest(pv, "uniform").pvalue)}
        rows.append(row)
    return rows


def size_section(run: str | None, sizes: list[int], resamples: int, pool: int) -> list[dict]:
    """Resample one network's (m, n, w_in) from one zero-mean Gaussian (its second moments) at several N and test
    each against a pool of ``pool`` null clouds of that N: c ~ 0 and p uniform at every N."""
    x0 = space(load_run(run).model.weights()) if run else space(load_reference(REFERENCE / "rdm_lr_fig2.pt"))
    cov = x0.T @ x0 / len(x0)
    root = np.linalg.cholesky(cov)
    rows = []
    for size in sizes:
        rng = np.random.default_rng(size)
        pools = {k: null_pool(size, len(cov), pool, k, rng) for k in ("ours", "ours_paper")}
        got: dict[str, dict[str, list]] = {k: {"c": [], "p": []} for k in pools}
        for _ in tqdm(range(resamples), desc=f"N={size}", file=sys.stderr):
            x = rng.standard_normal((size, len(cov))) @ root.T
            angles = data_angles(x, "ours")
            for key, null in pools.items():
                c, pv = test_against(angles, null)
                got[key]["c"].append(c)
                got[key]["p"].append(pv)
        row = {"size": size, "resamples": resamples, "pool": pool}
        for key, v in got.items():
            row[key] = {"c_mean": float(np.mean(v["c"])), "c_sd": float(np.std(v["c"], ddof=1)),
                        "fpr_0.05": float(np.mean(np.array(v["p"]) < 0.05))}
        rows.append(row)
    return rows


def draws_section(run: str | None, draws_list: list[int], repeats: int) -> list[dict]:
    x = space(load_run(run).model.weights()) if run else space(load_reference(REFERENCE / "rdm_lr_fig2.pt"))
    rows = []
    for draws in draws_list:
        res = [ours(x, draws=draws, rng=np.random.default_rng(s)) for s in range(repeats)]
        cs = [r["c"] for r in res]
        ps = [r["p"] for r in res]
        rows.append({"draws": draws, "repeats": repeats, "c_mean": float(np.mean(cs)), "c_sd": float(np.std(cs)),
                     "p_min": float(np.min(ps)), "p_max": float(np.max(ps)), "p_median": float(np.median(ps))})
    return rows


# ------------------------------------------------------------------ printing
def print_markdown(out: dict) -> None:
    if "reference" in out:
        print("## The authors' networks, connectivity space (m, n, w_in)\n")
        print("| network | N | dims | ours c (sd over seeds) / p | ours, paper's null: c / p | their procedure (numpy): "
              "c / p | ours with w_out: c / p |")
        print("|---|---|---|---|---|---|---|")
        for r in out["reference"]:
            print(f"| {r['file']} | {r['size']} | {r['dims']} | {r['ours']['c']:.3f} ({r['ours']['c_sd']:.3f}) / "
                  f"{r['ours']['p']:.2g} | {r['ours_paper']['c']:.3f} / {r['ours_paper']['p']:.2g} | "
                  f"{r['paper']['c']:.3f} / {r['paper']['p']:.2g} | {r['ours_with_w_out']['c']:.3f} / "
                  f"{r['ours_with_w_out']['p']:.2g} |")
        print()
    for sec in out.get("runs", []):
        print(f"## Networks trained here: `{sec['pattern']}` ({sec['runs']} networks)\n")
        if sec["plain_runs"]:
            print(f"The numpy re-implementation of the authors' procedure on the first {sec['plain_runs']}: "
                  f"max |c - c(ours, paper's null)| = {sec['plain_vs_ours_paper_max_abs_c']:.1e}.\n")
        print("| procedure / space | median c (quartiles) | mean c +- sem | p < 5e-4 | p < 0.05 |")
        print("|---|---|---|---|---|")
        for v, s in sec["summary"].items():
            print(f"| {v} | {fmt_summary(s)} |")
        task = next((t for t in PAPER if t in Path(sec["pattern"]).name), None)
        if task is not None:
            pp = PAPER[task]
            print(f"| the paper's 100 {task} networks (data/{task}_results.npz) | {pp['c_median']:.3f} "
                  f"({pp['c_q1']:.3f}-{pp['c_q3']:.3f}) | | {pp['p<5e-4']}/100 | {pp['p<0.05']}/100 |")
        print()
    if "calibration" in out:
        print("## Calibration: clouds from ONE Gaussian (random covariance)\n")
        print("| dims | N | clouds | draws (of a pool) | procedure | mean c +- sem | sd c | p < 0.05 | p < 5e-4 | KS p (p uniform) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in out["calibration"]:
            for key in ("ours", "ours_paper", "paper"):
                v = r[key]
                print(f"| {r['dims']} | {r['size']} | {r['clouds']} | {r['draws']} ({r['pool']}) | {key} | {v['c_mean']:+.4f} +- "
                      f"{v['c_sem']:.4f} | {v['c_sd']:.4f} | {v['fpr_0.05']:.3f} | {v['fpr_5e-4']:.3f} | "
                      f"{v['ks_uniform_p']:.2g} |")
        print()
    if "sizes" in out:
        print("## One network's (m, n, w_in) resampled from one Gaussian at several N\n")
        print("| N | resamples | null pool | ours: mean c (sd) | p < 0.05 | paper's null: mean c (sd) | p < 0.05 |")
        print("|---|---|---|---|---|---|---|")
        for r in out["sizes"]:
            a, b = r["ours"], r["ours_paper"]
            print(f"| {r['size']} | {r['resamples']} | {r['pool']} | {a['c_mean']:+.4f} ({a['c_sd']:.4f}) | "
                  f"{a['fpr_0.05']:.2f} | {b['c_mean']:+.4f} ({b['c_sd']:.4f}) | {b['fpr_0.05']:.2f} |")
        print()
    if "draws" in out:
        print("## Number of null draws (one network, ours)\n")
        print("| draws | repeats | mean c (sd) | p median (min-max) |")
        print("|---|---|---|---|")
        for r in out["draws"]:
            print(f"| {r['draws']} | {r['repeats']} | {r['c_mean']:.4f} ({r['c_sd']:.4f}) | {r['p_median']:.3g} "
                  f"({r['p_min']:.3g}-{r['p_max']:.3g}) |")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", action="append", default=[], help="glob of run directories (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many runs per glob")
    parser.add_argument("--plain", type=int, default=10, help="runs also tested by the numpy re-implementation")
    parser.add_argument("--draws", type=int, default=500, help="null clouds per test (the paper: 500)")
    parser.add_argument("--reference-seeds", type=int, default=3)
    parser.add_argument("--clouds", type=int, default=200, help="Gaussian clouds per dimension (calibration)")
    parser.add_argument("--cloud-dims", default="3,6")
    parser.add_argument("--cloud-draws", type=int, default=100, help="null clouds per test, from the pool")
    parser.add_argument("--pool", type=int, default=500, help="null clouds drawn once per procedure and shape")
    parser.add_argument("--sizes", default="512,2048,4096")
    parser.add_argument("--size-resamples", type=int, default=20)
    parser.add_argument("--size-pool", type=int, default=40)
    parser.add_argument("--size-run", default=None, help="run to resample (default: the authors' rdm network)")
    parser.add_argument("--draws-list", default="50,100,500,2000")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: reference,runs,calibration,"
                                                   "sizes,draws")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    start = time.perf_counter()
    out: dict = {"paper": PAPER}
    if "reference" not in skip:
        out["reference"] = reference_section(args.draws, args.reference_seeds)
    if "runs" not in skip and args.runs:
        out["runs"] = [runs_section(p, args.draws, args.limit, args.plain) for p in args.runs]
    if "calibration" not in skip:
        out["calibration"] = calibration_section(args.clouds, [int(d) for d in args.cloud_dims.split(",")], 512,
                                                 args.cloud_draws, args.pool)
    if "sizes" not in skip:
        out["sizes"] = size_section(args.size_run, [int(s) for s in args.sizes.split(",")], args.size_resamples,
                                    args.size_pool)
    if "draws" not in skip:
        out["draws"] = draws_section(args.size_run, [int(d) for d in args.draws_list.split(",")], 6)
    out["seconds"] = time.perf_counter() - start
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print_markdown(out)
        print(f"({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
