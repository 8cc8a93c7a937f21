"""Instance matching: how well predicted nuclei match reference nuclei (F1 at an IoU threshold)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class MatchScore:
    """Counts and scores of one instance matching."""

    true_positives: int
    false_positives: int
    false_negatives: int
    iou_threshold: float
    mean_matched_iou: float

    @property
    def precision(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return self.true_positives / max(1, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        tp = self.true_positives
        return 2 * tp / max(1, 2 * tp + self.false_positives + self.false_negatives)


def instance_f1(reference: np.ndarray, predicted: np.ndarray, iou_threshold: float = 0.5) -> MatchScore:
    """Match instances one-to-one at IoU > ``iou_threshold`` (unique above 0.5) and count hits.

    Parameters
    ----------
    reference, predicted : ndarray of int
        Label images of the same shape, 0 = background, one integer per instance.
    iou_threshold : float
        A pair matches when its intersection over union exceeds this (0.5 makes matches unique).

    Examples
    --------
    >>> a = np.zeros((6, 6), int); a[:3, :3] = 1; a[3:, 3:] = 2
    >>> b = np.zeros((6, 6), int); b[:3, :2] = 5
    >>> round(instance_f1(a, b).f1, 3)
    0.667
    """
    reference = np.asarray(reference)
    predicted = np.asarray(predicted)
    if reference.shape != predicted.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {predicted.shape}")
    _, ref = np.unique(reference, return_inverse=True)
    _, pred = np.unique(predicted, return_inverse=True)
    ref = ref.ravel()
    pred = pred.ravel()
    has_ref_bg = (reference == 0).any()
    has_pred_bg = (predicted == 0).any()
    inter = sparse.coo_matrix((np.ones(ref.size), (ref, pred))).tocsr()
    ref_area = np.asarray(inter.sum(axis=1)).ravel()
    pred_area = np.asarray(inter.sum(axis=0)).ravel()
    coo = inter.tocoo()
    keep = np.ones(coo.nnz, bool)
    if has_ref_bg:
        keep &= coo.row != 0
    if has_pred_bg:
        keep &= coo.col != 0
    rows, cols, counts = coo.row[keep], coo.col[keep], coo.data[keep]
    iou = counts / (ref_area[rows] + pred_area[cols] - counts)
    hit = iou > iou_threshold
    if iou_threshold < 0.5:  # greedy one-to-one when matches may not be unique
        order = np.argsort(-iou)
        used_r, used_c, sel = set(), set(), []
        for i in order[hit[order]]:
            if rows[i] not in used_r and cols[i] not in used_c:
                used_r.add(rows[i])
                used_c.add(cols[i])
                sel.append(i)
        hit = np.zeros_like(hit)
        hit[sel] = True
    tp = int(hit.sum())
    n_ref = ref_area.size - int(has_ref_bg)
    n_pred = pred_area.size - int(has_pred_bg)
    mean_iou = float(iou[hit].mean()) if tp else 0.0
    return MatchScore(tp, n_pred - tp, n_ref - tp, iou_threshold, mean_iou)
