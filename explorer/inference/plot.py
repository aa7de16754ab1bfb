"""A static figure of a Posterior (matplotlib, Agg): −2ΔlnL̂ image with 1/2/3σ contours, the
truth, optional P(k)-baseline contours, and both marginals with their 68 % intervals.

    plot_posterior(post, "posterior.png", baseline=pk_post)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .posterior import Posterior

LABELS = {"omega_m": r"$\Omega_m$", "sigma_8": r"$\sigma_8$"}


def plot_posterior(post: Posterior, path: str | Path, baseline: Posterior | None = None, title: str = "",
                   cnn: dict | None = None) -> Path:
    """Write the figure to ``path`` (format from its suffix, e.g. .png, .pdf).

    ``baseline``: the P(k) posterior on a grid; ``cnn``: the CNN estimator's estimates (mean and σ
    per parameter, :meth:`CnnEstimator.estimate`), drawn as a point with 68 % error bars and
    Gaussian marginals."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(9.5, 7.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(3, 1.2), height_ratios=(1.2, 3), hspace=0.08, wspace=0.08)
    ax = fig.add_subplot(grid[1, 0])
    ax_om = fig.add_subplot(grid[0, 0], sharex=ax)
    ax_s8 = fig.add_subplot(grid[1, 1], sharey=ax)

    om, s8 = post.omega_m, post.sigma_8
    shown = np.minimum(post.delta_chi2, 3 * post.levels[-1])
    img = ax.pcolormesh(om, s8, shown.T, cmap="viridis_r", shading="auto")
    fig.colorbar(img, ax=ax_s8, fraction=0.5, pad=0.1, label=r"$-2\Delta\ln\hat L$ (clipped)")
    ax.contour(om, s8, post.delta_chi2.T, levels=list(post.levels), colors="white",
               linestyles=("-", "--", ":"), linewidths=1.5)
    handles = [plt.Line2D([], [], color="white", label="diffusion 1/2/3$\\sigma$")]
    if baseline is not None:
        ax.contour(baseline.omega_m, baseline.sigma_8, baseline.delta_chi2.T, levels=list(baseline.levels[:2]),
                   colors="tab:orange", linestyles=("-", "--"), linewidths=1.5)
        handles.append(plt.Line2D([], [], color="tab:orange", label="P(k) baseline 1/2$\\sigma$"))
    if cnn is not None:
        c1, c2 = cnn["omega_m"], cnn["sigma_8"]
        ax.errorbar(c1["mean"], c2["mean"], xerr=c1["std"], yerr=c2["std"], color="tab:cyan", marker="o",
                    markersize=6, markeredgecolor="k", capsize=3, linestyle="none")
        handles.append(plt.Line2D([], [], color="tab:cyan", marker="o", markeredgecolor="k", label="CNN ± 1σ"))
    if post.truth is not None:
        ax.plot(*post.truth, marker="*", color="red", markersize=14, markeredgecolor="k", linestyle="none")
        handles.append(plt.Line2D([], [], marker="*", color="red", linestyle="none", label="truth"))
    ax.set_xlim(om[0], om[-1])
    ax.set_ylim(s8[0], s8[-1])
    ax.set_xlabel(LABELS["omega_m"])
    ax.set_ylabel(LABELS["sigma_8"])
    leg = ax.legend(handles=handles, loc="upper right", fontsize=8, facecolor="0.3", framealpha=0.6)
    for text in leg.get_texts():
        text.set_color("white")

    def marginal(axis, grid_, m, est, base_grid, base_m, truth, vertical, cnn_est=None):
        dens = m / np.gradient(grid_)  # mass per point -> density, for overlaying different grids
        plot = (lambda x, y, **k: axis.plot(y, x, **k)) if vertical else axis.plot
        span = axis.axhspan if vertical else axis.axvspan
        line = axis.axhline if vertical else axis.axvline
        plot(grid_, dens, color="k", label="diffusion")
        span(est["lo68"], est["hi68"], color="0.6", alpha=0.4)
        if base_grid is not None:
            plot(base_grid, base_m / np.gradient(base_grid), color="tab:orange", label="P(k)")
        if cnn_est is not None:
            g = np.linspace(grid_[0], grid_[-1], 300)
            plot(g, np.exp(-0.5 * ((g - cnn_est["mean"]) / cnn_est["std"]) ** 2) / (np.sqrt(2 * np.pi) * cnn_est["std"]),
                 color="tab:cyan", label="CNN")
        if truth is not None:
            line(truth, color="red")
        axis.tick_params(labelbottom=False, labelleft=False)

    b = baseline
    marginal(ax_om, om, post.marginal_omega_m, post.estimates["omega_m"], b.omega_m if b else None,
             b.marginal_omega_m if b else None, post.truth[0] if post.truth else None, vertical=False,
             cnn_est=cnn["omega_m"] if cnn else None)
    marginal(ax_s8, s8, post.marginal_sigma_8, post.estimates["sigma_8"], b.sigma_8 if b else None,
             b.marginal_sigma_8 if b else None, post.truth[1] if post.truth else None, vertical=True,
             cnn_est=cnn["sigma_8"] if cnn else None)
    e1, e2 = post.estimates["omega_m"], post.estimates["sigma_8"]
    ax_om.set_title(title or (f"Ωₘ = {e1['max']:.3f} [{e1['lo68']:.3f}, {e1['hi68']:.3f}]   "
                              f"σ₈ = {e2['max']:.3f} [{e2['lo68']:.3f}, {e2['hi68']:.3f}]   "
                              f"({post.terms}, {post.temperature_label()})"), fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
