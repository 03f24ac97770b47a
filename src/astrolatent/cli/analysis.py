"""CLI commands of the analysis area: ``mi``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from astrolatent.cli.common import (
    ConfigFile,
    PrintConfig,
    console,
    echo_json,
    parse_columns,
    print_config,
)
from astrolatent.errors import ConfigError


def mi_command(
    table: Annotated[Path, typer.Argument(help="Table file: .csv, .parquet or .fits.")],
    x: Annotated[
        str, typer.Option("--x", help="Column(s), comma-separated: one (multivariate) variable.")
    ],
    y: Annotated[str, typer.Option("--y", help="Label column(s), comma-separated.")],
    estimator: Annotated[
        Literal["auto", "gaussian_copula", "t_copula", "ksg", "gmm", "hist"],
        typer.Option(
            help="MI estimator; auto: KSG on normal scores for 1D x and y, for multivariate "
            "ones the Gaussian copula unless their joint tails are heavy (then a fitted t copula "
            "when every column pair agrees on its nu, else KSG)."
        ),
    ] = "auto",
    conditional: Annotated[
        str | None,
        typer.Option(
            help="Column(s) to condition on: I(X;Y|Z) (auto, gaussian_copula, t_copula, ksg, gmm)."
        ),
    ] = None,
    n_neighbors: Annotated[int, typer.Option(help="k of the KSG estimator.")] = 3,
    n_bootstrap: Annotated[
        int, typer.Option(help="Half-sampling replicates for the error (0: none).")
    ] = 30,
    n_permutations: Annotated[
        int, typer.Option(help="Permutations for the p-value (0: none).")
    ] = 100,
    sigma: Annotated[
        float,
        typer.Option(help="Clip labels beyond this many standard deviations (0: no clipping)."),
    ] = 5.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Mutual information (nats) between columns of a table, with error bar, p-value and r_I.

    Rows with a non-finite x, and rows whose label or conditioning columns are NaN, a
    sentinel (-9999, 9999) or beyond --sigma standard deviations, are dropped first.
    """
    from rich.table import Table

    from astrolatent import api

    if not sigma >= 0:  # also NaN
        raise ConfigError(f"--sigma {sigma}: must be 0 (no clipping) or positive")
    x_cols, y_cols, z_cols = parse_columns(x), parse_columns(y), parse_columns(conditional)
    if not x_cols or not y_cols:
        raise ConfigError("--x and --y each need at least one column name")
    result = api.mi(
        table,
        x=x_cols,
        y=y_cols,
        z=z_cols,
        sigma=sigma,
        estimator=estimator,
        n_neighbors=n_neighbors,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        random_state=seed,
    )
    if as_json:
        echo_json(result.to_dict())
        return
    what = f"I({', '.join(x_cols)} ; {', '.join(y_cols)}" + (
        f" | {', '.join(z_cols)})" if z_cols else ")"
    )
    out = Table(title=f"{what} in nats, {table.name}")
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
    n_permutations: Annotated[
        int | None, typer.Option(help="Label permutations for p-values (default 100).")
    ] = None,
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
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Skip the PCA baseline and ceiling.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    config: ConfigFile = None,
    show_config: PrintConfig = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json.")] = False,
) -> None:
    """What each latent dimension knows: informative dims, MI with labels, baseline, traversals."""
    from astrolatent import api

    cfg = api.analyze_config(
        config=config,
        labels=labels,
        estimator=estimator,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        max_samples=max_samples,
        split=split,
        pca_baseline=False if no_baseline else None,
        seed=seed,
    )
    print_config(cfg, when=show_config)
    with console.status("analysing") as status:
        summary = api.analyze(run, config=cfg, progress=lambda msg: status.update(msg)).summary
    if as_json:
        echo_json(summary)
        return
    inf = summary["informative"]
    console.print(
        f"{summary['n_latent']} latent dims; informative by dispersion {inf['dispersion']['dims']}, "
        f"by KL rate {inf['kl']['dims']}, both {inf['agreed']}"
    )
    from rich.table import Table

    table = Table(title="best latent per label")
    columns = (
        "label",
        "best dim",
        "MI (nats)",
        "r_I",
        "best informative dim (r_I)",
        "p (FWER)",
        "all latents r",
    )
    for col in (*columns, "PCA best r_I", "ceiling r"):
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
    _print_audit(summary)
    console.print(f"results in {Path(run) / 'analysis'}")


def _print_audit(summary: dict) -> None:
    """The known-labels audit in three lines (nothing for a run without known labels)."""
    free = summary.get("free")
    if free is None:
        return
    known = ", ".join(
        f"{k} (dim {v['dim']}, r_I {v['r_info']:.2f})" for k, v in summary["known"].items()
    )
    console.print(f"known labels: {known}; informative free dims {free['dims']}", highlight=False)
    beyond = ", ".join(
        f"{k} (dim {v['best_dim']}, MI given the known {v['cmi_given_known']:.3f}, p {v['p_value']})"
        for k, v in free["labels"].items()
    )
    console.print(f"beyond the known labels: {beyond or 'no other label'}", highlight=False)
    leaks = ", ".join(
        f"{k} (max MI {v['max_mi']:.3f}, p {v['p_value']:.3g}, R^2 {v['r2']:.2f})"
        for k, v in free["leakage"].items()
    )
    console.print(f"known labels in the free dims: {leaks}", highlight=False)
