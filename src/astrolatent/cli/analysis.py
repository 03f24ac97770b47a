"""CLI commands of the analysis area: ``mi``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import typer

from astrolatent import api
from astrolatent.cli.common import (
    JsonFlag,
    Permutations,
    Seed,
    TableArg,
    configured,
    console,
    echo_json,
)


@configured(api.mi_config, exclude=("table",))
def mi_command(
    table: TableArg,
    x: Annotated[
        str | None,
        typer.Option("--x", help="Column(s), comma-separated: one (multivariate) variable."),
    ] = None,
    y: Annotated[str | None, typer.Option("--y", help="Label column(s), comma-separated.")] = None,
    estimator: Annotated[
        Literal["auto", "gaussian_copula", "t_copula", "ksg", "gmm", "hist"] | None,
        typer.Option(
            help="MI estimator (default auto: KSG on normal scores for 1D x and y, for "
            "multivariate ones the Gaussian copula unless their joint tails are heavy, then a "
            "fitted t copula when every column pair agrees on its nu, else KSG)."
        ),
    ] = None,
    conditional: Annotated[
        str | None,
        typer.Option(
            help="Column(s) to condition on: I(X;Y|Z) (auto, gaussian_copula, t_copula, ksg, gmm)."
        ),
    ] = None,
    n_neighbors: Annotated[
        int | None, typer.Option(help="k of the KSG estimator (default 3).")
    ] = None,
    n_bootstrap: Annotated[
        int | None,
        typer.Option(help="Half-sampling replicates for the error (0: none; default 30)."),
    ] = None,
    n_permutations: Permutations = None,
    sigma: Annotated[
        float | None,
        typer.Option(
            help="Clip labels beyond this many standard deviations (0: no clipping; default 5)."
        ),
    ] = None,
    seed: Seed = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """Mutual information (nats) between columns of a table, with error bar, p-value and r_I.

    --x and --y are required (here or in the --config file). Rows with a non-finite x, and
    rows whose label or conditioning columns are NaN, a sentinel (-9999, 9999) or beyond
    --sigma standard deviations, are dropped first.
    """
    from rich.table import Table

    result = api.mi(table, config=cfg)
    if as_json:
        echo_json(result.to_dict())
        return
    given = f" | {', '.join(cfg.conditional)})" if cfg.conditional else ")"
    out = Table(title=f"I({', '.join(cfg.x)} ; {', '.join(cfg.y)}{given} in nats, {table.name}")
    for header in ("estimator", "n", "MI", "error", "p-value", "r_I"):
        out.add_column(header, justify="right")
    out.add_row(
        result.estimator,
        str(result.n),
        f"{result.mi:.4f}",
        f"{result.mi_err:.4f}",
        f"{result.p_value:.3g}",
        f"{result.r_info:.3f}",
    )
    console.print(out)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("mi")(mi_command)
    app.command("analyze")(analyze_command)


@configured(api.analyze_config, exclude=("run",))
def analyze_command(
    run: Annotated[Path, typer.Argument(help="Run directory (after `astrolatent encode RUN`).")],
    labels: Annotated[
        str | None, typer.Option(help="Comma-separated labels (default: every numeric label).")
    ] = None,
    estimator: Annotated[
        Literal["ksg", "gmm", "hist"] | None, typer.Option(help="MI estimator (default ksg).")
    ] = None,
    n_bootstrap: Annotated[
        int | None, typer.Option(help="Half-sampling replicates for error bars (default 20).")
    ] = None,
    n_permutations: Permutations = None,
    max_samples: Annotated[
        int | None, typer.Option(help="Spectra used per label (random subsample; default 5000).")
    ] = None,
    split: Annotated[
        Literal["threshold", "groups"] | None,
        typer.Option(
            help="Informative-dim cut: two groups of scores (default; falls back to the "
            "thresholds) or fixed thresholds."
        ),
    ] = None,
    pca_baseline: Annotated[
        bool | None,
        typer.Option(
            "--baseline/--no-baseline", help="The PCA baseline and ceiling (default: on)."
        ),
    ] = None,
    one_per_object: Annotated[
        bool | None,
        typer.Option(
            "--one-per-object/--every-spectrum",
            help="One spectrum of each object (default), or every spectrum: repeat spectra "
            "of a star are near-duplicates that inflate MI and its significance.",
        ),
    ] = None,
    seed: Seed = None,
    as_json: JsonFlag = False,
    *,
    cfg,
) -> None:
    """What each latent dimension knows: informative dims, MI with labels, baseline, traversals."""
    with console.status("analysing") as status:
        summary = api.analyze(run, config=cfg, progress=lambda msg: status.update(msg)).summary
    if as_json:
        echo_json(summary)
        return
    _print_analysis(summary)
    _print_audit(summary, cfg.alpha)
    console.print(f"results in {Path(run) / 'analysis'}")


def _print_analysis(summary: dict) -> None:
    """The informative dims and the table of each label's best latent and references."""
    from rich.table import Table

    inf = summary["informative"]
    console.print(
        f"{summary['n_latent']} latent dims; informative by dispersion {inf['dispersion']['dims']}, "
        f"by KL rate {inf['kl']['dims']}, both {inf['agreed']}"
    )
    table = Table(title="best latent per label")
    columns = ("label", "best dim", "MI (nats)", "r_I", "best informative dim (r_I)")
    for col in (*columns, "p (FWER)", "all latents r", "PCA best r_I", "ceiling r"):
        table.add_column(col)
    pca = summary.get("baseline_pca", {}).get("labels", {})
    joint = summary.get("all_latents", {})
    ceiling = summary.get("ceiling", {})
    for name, b in summary["labels"].items():
        table.add_row(
            name,
            str(b["best_dim"]),
            f"{b['mi']:.3f} ± {b['mi_err']:.3f}",
            f"{b['r_info']:.2f}",
            "-"
            if b.get("best_informative_dim") is None
            else f"{b['best_informative_dim']} ({b['r_info_informative']:.2f})",
            f"{b['p_value_fwer']:.3g}",
            f"{joint[name]['r']:.2f}" if name in joint else "-",
            f"{pca[name]['r_info']:.2f}" if name in pca else "-",
            f"{ceiling[name]['r']:.2f}" if name in ceiling else "-",
        )
    console.print(table)


def _p_text(entry: dict) -> str:
    """A ``free.labels`` entry's p-value; ``<= p`` where no permutation reached the observed value."""
    from astrolatent.outputs.summaries import p_at_floor

    p = entry["p_value"]
    if p is None:
        return "-"
    return f"<= {p:.3g}" if p_at_floor(entry) else f"{p:.3g}"


def _print_audit(summary: dict, alpha: float) -> None:
    """The known-labels audit in three lines (nothing for a run without known labels)."""
    free = summary.get("free")
    if free is None:
        return
    known = ", ".join(
        f"{k} (dim {v['dim']}, r_I {v['r_info']:.2f})" for k, v in summary["known"].items()
    )
    console.print(f"known labels: {known}; informative free dims {free['dims']}", highlight=False)
    beyond = ", ".join(
        f"{k} (dim {v['best_dim']}, MI given the known {v['cmi_given_known']:.3f}, p {_p_text(v)})"
        for k, v in free["labels"].items()
    )
    console.print(f"beyond the known labels: {beyond or 'no other label'}", highlight=False)
    floors = [v["p_floor"] for v in free["labels"].values() if v.get("p_floor") is not None]
    n_free = sum(role["role"] == "free" for role in summary["roles"])
    if floors and min(floors) >= alpha:
        console.print(
            f"note: {n_free} free dims and these permutations cannot give a conditional p below "
            f"{min(floors):.3g}; --n-permutations {math.ceil(n_free / alpha)} or more can reach "
            f"p < {alpha:g}",
            highlight=False,
        )
    leaks = ", ".join(
        f"{k} (max MI {v['max_mi']:.3f}, p {v['p_value']:.3g}, R^2 {v['r2']:.2f}; "
        f"of the means {v['max_mi_means']:.3f})"
        for k, v in free["leakage"].items()
    )
    console.print(f"known labels in the free dims: {leaks}", highlight=False)
