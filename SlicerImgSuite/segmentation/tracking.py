"""Time-lapse tracking: link nuclei frame to frame by nearest neighbour, with gap memory."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


def track_nuclei(
    centroids: list[np.ndarray],
    max_distance: float,
    memory: int = 2,
) -> list[list[tuple[int, int]]]:
    """Link per-frame centroids into tracks (globally optimal one-to-one matching per frame).

    Parameters
    ----------
    centroids : list of ndarray (n_i, ndim)
        Nucleus centroids of each frame, in one unit (pixels or micrometres).
    max_distance : float
        A nucleus moves at most this far between the frames it is seen in.
    memory : int
        A track may vanish for up to this many frames and still be continued (gap closing),
        like trackpy's ``memory``.

    Returns
    -------
    list of tracks
        Each track is a list of ``(frame, index_in_frame)``, in time order.

    Examples
    --------
    >>> frames = [np.array([[0, 0], [10, 10]]), np.array([[10, 11], [1, 0]]), np.zeros((0, 2)), np.array([[2, 0]])]
    >>> track_nuclei(frames, max_distance=3)
    [[(0, 0), (1, 1), (3, 0)], [(0, 1), (1, 0)]]
    """
    tracks: list[list[tuple[int, int]]] = []
    active: list[int] = []  # indices into tracks that may still continue
    for frame, points in enumerate(centroids):
        points = np.asarray(points, float)
        active = [t for t in active if frame - tracks[t][-1][0] <= memory + 1]
        taken = set()
        if len(points) and active:
            last = np.array([_position(centroids, tracks[t][-1]) for t in active])
            cost = cdist(last, points)
            # penalise older tracks slightly so a fresh link wins a tie
            cost = cost + 1e-6 * np.array([frame - tracks[t][-1][0] for t in active])[:, None]
            big = max_distance * 10 + 1.0
            rows, cols = linear_sum_assignment(np.where(cost <= max_distance, cost, big))
            for r, c in zip(rows, cols):
                if cost[r, c] <= max_distance:
                    tracks[active[r]].append((frame, int(c)))
                    taken.add(int(c))
        for i in range(len(points)):
            if i not in taken:
                tracks.append([(frame, i)])
                active.append(len(tracks) - 1)
    return tracks


def _position(centroids, key):
    frame, index = key
    return np.asarray(centroids[frame], float)[index]
