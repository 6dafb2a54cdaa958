"""Kalman filter and cost matrices against hand-derived values."""

import numpy as np
import pytest

from fiftyone_posetrack.tracking.kalman import (
    CHI2_95_4DOF,
    KalmanBoxFilter,
    xyah_to_xyxy,
    xyxy_to_xyah,
)
from fiftyone_posetrack.tracking.matching import (
    INF_COST,
    cosine_distance,
    gallery_distance,
    iou_matrix,
    linear_assignment,
)

KF = KalmanBoxFilter()
BOX = np.array([[10.0, 20.0, 50.0, 120.0]])  # w 40, h 100, center (30, 70)


def test_box_conversions_round_trip():
    xyah = xyxy_to_xyah(BOX)
    np.testing.assert_allclose(xyah, [[30, 70, 0.4, 100]])
    np.testing.assert_allclose(xyah_to_xyxy(xyah), BOX)


def test_initiate_uses_paper_weights():
    mean, cov = KF.initiate(xyxy_to_xyah(BOX))
    np.testing.assert_allclose(mean, [[30, 70, 0.4, 100, 0, 0, 0, 0]])
    h = 100.0
    pos, vel = (2 * h / 20) ** 2, (10 * h / 160) ** 2
    np.testing.assert_allclose(np.diag(cov[0]), [pos, pos, 1e-4, pos, vel, vel, 1e-10, vel])
    assert np.count_nonzero(cov[0] - np.diag(np.diag(cov[0]))) == 0


def test_predict_by_hand():
    mean, cov = KF.initiate(xyxy_to_xyah(BOX))
    mean[0, 4:] = [1.0, 2.0, 0.0, 3.0]
    m2, c2 = KF.predict(mean, cov)
    np.testing.assert_allclose(m2[0, :4], [31, 72, 0.4, 103])
    np.testing.assert_allclose(m2[0, 4:], [1, 2, 0, 3])
    p, v = cov[0, 0, 0], cov[0, 4, 4]
    q_pos, q_vel = (100 / 20) ** 2, (100 / 160) ** 2  # noise from the prior height
    assert c2[0, 0, 0] == pytest.approx(p + v + q_pos)
    assert c2[0, 0, 4] == pytest.approx(v)
    assert c2[0, 4, 4] == pytest.approx(v + q_vel)
    assert c2[0, 2, 2] == pytest.approx(1e-4 + 1e-10 + 1e-4)


def test_update_by_hand():
    mean, cov = KF.predict(*KF.initiate(xyxy_to_xyah(BOX)))
    z = np.array([[34.0, 70.0, 0.4, 100.0]])
    m2, c2 = KF.update(mean, cov, z)
    r = (mean[0, 3] / 20) ** 2  # measurement noise from the predicted height
    pxx, pxv = cov[0, 0, 0], cov[0, 0, 4]
    s = pxx + r
    assert m2[0, 0] == pytest.approx(30 + pxx / s * 4)
    assert m2[0, 4] == pytest.approx(pxv / s * 4)  # the velocity learns from the innovation
    assert c2[0, 0, 0] == pytest.approx(pxx - pxx**2 / s)
    np.testing.assert_allclose(m2[0, [1, 2, 3]], [70, 0.4, 100])


def test_batched_equals_one_by_one():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (6, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 200, (6, 2))], axis=1)
    mean, cov = KF.predict(*KF.initiate(xyxy_to_xyah(boxes)))
    z = xyxy_to_xyah(boxes + rng.normal(0, 2, boxes.shape))
    mb, cb = KF.update(mean, cov, z)
    for i in range(6):
        m1, c1 = KF.update(mean[i : i + 1], cov[i : i + 1], z[i : i + 1])
        np.testing.assert_allclose(mb[i], m1[0])
        np.testing.assert_allclose(cb[i], c1[0])


def test_gating_distance_and_threshold():
    mean, cov = KF.initiate(xyxy_to_xyah(BOX))
    _, s = KF.project(mean, cov)
    sxx = s[0, 0, 0]
    edge = np.sqrt(CHI2_95_4DOF * sxx)  # x offset where the distance hits the gate
    z = np.array([[30 + 0.99 * edge, 70, 0.4, 100], [30 + 1.01 * edge, 70, 0.4, 100]])
    d = KF.gating_distance(mean, cov, z)
    assert d.shape == (1, 2)
    assert d[0, 0] == pytest.approx((0.99 * edge) ** 2 / sxx)
    assert d[0, 0] < CHI2_95_4DOF < d[0, 1]


def test_warp_translates_and_scales():
    mean, cov = KF.initiate(xyxy_to_xyah(BOX))
    mean[0, 4:] = [1, 0, 0, 0]
    affine = np.array([[2.0, 0, 5], [0, 2.0, -3]])
    m2, c2 = KF.warp(mean, cov, affine)
    np.testing.assert_allclose(m2[0], [65, 137, 0.4, 200, 2, 0, 0, 0])
    assert c2[0, 3, 3] == pytest.approx(4 * cov[0, 3, 3])


def test_iou_and_cosine():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0.0]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30.0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0], [0, 0]])
    f = np.array([[1.0, 0], [0, 2.0]])
    np.testing.assert_allclose(cosine_distance(f, f), [[0, 1], [1, 0]], atol=1e-6)


def test_paired_cosine_is_the_dense_matrix_at_the_pairs():
    from fiftyone_posetrack.tracking.matching import paired_cosine_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 16)), rng.normal(size=(5, 16))
    rows, cols = rng.integers(0, 7, 20), rng.integers(0, 5, 20)
    np.testing.assert_allclose(paired_cosine_distance(a[rows], b[cols]), cosine_distance(a, b)[rows, cols], atol=1e-6)
    assert paired_cosine_distance(np.zeros((0, 16)), np.zeros((0, 16))).shape == (0,)


def test_gallery_distance_is_nearest_neighbour():
    gal = [np.array([[1, 0, 0], [0, 1, 0]], np.float32), np.zeros((0, 3), np.float32),
           np.array([[0, 0, 1]], np.float32)]  # fmt: skip
    feats = np.array([[0, 1, 0], [0.6, 0, 0.8]], np.float32)
    d = gallery_distance(gal, feats)
    np.testing.assert_allclose(d[0], [0, 0.4], atol=1e-6)
    assert (d[1] == INF_COST).all()
    np.testing.assert_allclose(d[2], [1, 0.2], atol=1e-6)


def test_linear_assignment_limit():
    cost = np.array([[0.1, 0.9], [0.8, 0.95], [0.5, 0.2]])
    m, ur, uc = linear_assignment(cost, 0.6)
    assert sorted(map(tuple, m.tolist())) == [(0, 0), (2, 1)]
    assert ur.tolist() == [1] and uc.tolist() == []
    m, ur, uc = linear_assignment(np.zeros((0, 3)), 0.5)
    assert len(m) == 0 and uc.tolist() == [0, 1, 2]
    m, _, _ = linear_assignment(np.array([[np.nan, 0.1]]), 0.5)
    assert m.tolist() == [[0, 1]]


def test_linear_assignment_is_optimal():
    """Same matched count and total cost as scipy's Hungarian on the admissible pairs."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    for trial in range(200):
        n, m = rng.integers(0, 8, 2)
        cost = rng.random((n, m))
        if trial % 3 == 0:  # sparse: mostly forbidden pairs (the conflict-free fast path)
            cost[rng.random((n, m)) < 0.8] = INF_COST
        limit = 0.5
        matches, ur, uc = linear_assignment(cost, limit)
        assert len(matches) + len(ur) == n and len(matches) + len(uc) == m
        assert (cost[matches[:, 0], matches[:, 1]] <= limit).all()
        # reference: unmatched costs `limit` per side / 2, as in the extended problem
        big = np.full((n + m, n + m), 1e9)
        big[:n, :m] = np.where(cost <= limit, cost, 1e9)
        big[:n, m:] = np.where(np.eye(n), limit / 2, 1e9) if n else big[:n, m:]
        big[n:, :m] = np.where(np.eye(m), limit / 2, 1e9) if m else big[n:, :m]
        big[n:, m:] = 0
        r, c = linear_sum_assignment(big)
        ref = big[r, c].sum()
        ours = cost[matches[:, 0], matches[:, 1]].sum() + (len(ur) + len(uc)) * limit / 2
        assert ours == pytest.approx(ref, abs=1e-9)
