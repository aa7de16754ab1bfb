"""Shared pieces of the benchmark figures drawn over the (Ωₘ, σ₈) prior box."""

from pathlib import Path

from explorer.params import PRIOR


def prior_axes(ax, prefix: str = "") -> None:
    """Limit ``ax`` to the prior box and label its axes (``prefix``: e.g. "true ")."""
    ax.set_xlim(*PRIOR[0])
    ax.set_ylim(*PRIOR[1])
    ax.set_xlabel(f"{prefix}Ωₘ")
    ax.set_ylabel(f"{prefix}σ₈")


def save(fig, out: Path, title: str) -> None:
    """Title, tight layout, write ``out`` (its folder made if needed) and print its path."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(out)
