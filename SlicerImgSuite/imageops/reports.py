"""The printed reports of the measuring image tools, in plastimatch's layout: what ``imgsuite stats | compare | dice |
probe`` print and what the Image tools module shows."""

from __future__ import annotations


def stats_text(s: dict, sigma: bool = False) -> str:
    """One ``stats`` line.

    Examples
    --------
    >>> stats_text({"min": 0, "mean": 1.5, "max": 3, "sigma": 1, "nonzero": 3, "numvox": 4}, sigma=True)
    'MIN 0.000000 AVE 1.500000 MAX 3.000000 SIGMA 1.000000 NONZERO 3 NUMVOX 4'
    """
    shown = f" SIGMA {s['sigma']:f}" if sigma else ""
    return f"MIN {s['min']:f} AVE {s['mean']:f} MAX {s['max']:f}{shown} NONZERO {s['nonzero']} NUMVOX {s['numvox']}"


def compare_text(r: dict) -> str:
    """The three ``compare`` lines."""
    return (
        f"MIN {r['min']:f} AVE {r['mean']:f} MAX {r['max']:f}\n"
        f"MAE {r['mae']:f} MSE {r['mse']:f}\n"
        f"DIF {r['dif']} NUM {r['num']}"
    )


def dice_text(s: dict, dice: bool = True, hausdorff: bool = False) -> str:
    """``dice``'s overlap block and/or its Hausdorff block."""
    lines = []
    if dice:
        lines += [
            "CENTER_OF_MASS",
            "ref\t" + "\t".join(f"{v:14g}" for v in s["reference_com"]),
            "cmp\t" + "\t".join(f"{v:14g}" for v in s["test_com"]),
        ]
        lines += [f"{key.upper()}:{s[key]:14d}" for key in ("tp", "tn", "fn", "fp")]
        lines += [f"DICE:{s['dice']:14f}", f"SE:{s['sensitivity']:14f}", f"SP:{s['specificity']:14f}"]
    if hausdorff:
        for suffix, key in (("", ""), (" (boundary)", "boundary_")):
            lines += [
                f"Hausdorff distance{suffix} = {s[key + 'hausdorff']:f}",
                f"Avg average Hausdorff distance{suffix} = {s['avg_' + key + 'hausdorff']:f}",
                f"Max average Hausdorff distance{suffix} = {s['max_avg_' + key + 'hausdorff']:f}",
                f"Percent (0.95) Hausdorff distance{suffix} = {s['percent_' + key + 'hausdorff']:f}",
            ]
    return "\n".join(lines)


def probe_text(rows) -> str:
    """One ``probe`` line per point: index; location; value (N/A outside).

    Examples
    --------
    >>> probe_text([((1.0, 2.0), (0.5, 1.0), float("nan"))])
    '   0:    1.00,    2.00;    0.50,    1.00; N/A'
    """
    lines = []
    for n, (index, location, value) in enumerate(rows):
        idx = ", ".join(f"{v:7.2f}" for v in index)
        loc = ", ".join(f"{v:7.2f}" for v in location)
        values = value if isinstance(value, tuple) else (value,)  # a vector field gives one value per component
        shown = "N/A" if any(v != v for v in values) else " ".join(f"{v:f}" for v in values)
        lines.append(f"{n:4d}: {idx}; {loc}; {shown}")
    return "\n".join(lines)
