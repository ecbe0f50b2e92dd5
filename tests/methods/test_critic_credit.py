"""GAE over steps and HiPER's HAE against plain loops (the loops follow the reference
code's structure: per trajectory, per segment, backwards)."""

from __future__ import annotations

import numpy as np
import pytest

from agentgym.credit import CreditBatch, compute_advantages
from agentgym.credit.gae import gae_advantages, hierarchical_advantages, segments


def random_batch(seed: int, n_traj: int = 6, max_len: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=n_traj)
    rows = [(t, k) for t in range(n_traj) for k in range(int(lengths[t]))]
    rng.shuffle(rows)  # rows in any order
    n = len(rows)
    return {
        "group": [t // 3 for t, _ in rows],
        "traj": [t for t, _ in rows],
        "step": [k for _, k in rows],
        "reward": rng.normal(size=n).round(2),
        "value": rng.normal(size=n).round(2),
        "value_high": rng.normal(size=n).round(2),
        "switch": rng.random(n) < 0.4,
    }


def by_traj(cols: dict) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for row in sorted(range(len(cols["traj"])), key=lambda r: (cols["traj"][r], cols["step"][r])):
        out.setdefault(cols["traj"][row], []).append(row)
    return out


def loop_gae(cols: dict, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(cols["reward"])
    adv, ret = np.zeros(n), np.zeros(n)
    for rows in by_traj(cols).values():
        last = 0.0
        for pos in range(len(rows) - 1, -1, -1):
            i = rows[pos]
            v_next = cols["value"][rows[pos + 1]] if pos + 1 < len(rows) else 0.0
            delta = cols["reward"][i] + gamma * v_next - cols["value"][i]
            last = delta + gamma * lam * last
            adv[i], ret[i] = last, last + cols["value"][i]
    return adv, ret


def loop_hae(cols: dict, gamma: float, lam_low: float, lam_high: float) -> dict:
    n = len(cols["reward"])
    r, v_low, v_high = cols["reward"], cols["value"], cols["value_high"]
    out = {k: np.zeros(n) for k in ("adv_low", "ret_low", "adv_high", "ret_high")}
    for rows in by_traj(cols).values():
        starts = [0] + [p for p in range(1, len(rows)) if cols["switch"][rows[p]]]
        segs = [(s, (starts[k + 1] - 1 if k + 1 < len(starts) else len(rows) - 1),
                 starts[k + 1] if k + 1 < len(starts) else None)
                for k, s in enumerate(starts)]  # fmt: skip
        for s, e, nxt in segs:  # low level, inside each segment
            next_adv = 0.0
            for pos in range(e, s - 1, -1):
                i = rows[pos]
                if pos < e:
                    v_next = v_low[rows[pos + 1]]
                else:
                    v_next = v_high[rows[nxt]] if nxt is not None else 0.0
                a = r[i] + gamma * v_next - v_low[i] + gamma * lam_low * next_adv
                out["adv_low"][i], out["ret_low"][i] = a, a + v_low[i]
                next_adv = a
        next_seg_adv = 0.0
        for s, e, nxt in reversed(segs):  # high level, across segments
            seg_return = sum(gamma**j * r[rows[pos]] for j, pos in enumerate(range(s, e + 1)))
            d = e - s + 1
            boot = v_high[rows[nxt]] if nxt is not None else 0.0
            a = seg_return + gamma**d * boot - v_high[rows[s]] + gamma**d * lam_high * next_seg_adv
            out["adv_high"][rows[s]], out["ret_high"][rows[s]] = a, a + v_high[rows[s]]
            next_seg_adv = a
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 1.0), (0.99, 0.95), (0.9, 0.0)])
def test_gae_matches_the_loop(seed: int, gamma: float, lam: float) -> None:
    cols = random_batch(seed)
    batch = CreditBatch.from_columns(**{k: cols[k] for k in ("group", "traj", "step", "reward")})
    adv, ret = gae_advantages(batch, cols["value"], gamma, lam)
    ref_adv, ref_ret = loop_gae(cols, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, atol=1e-12)
    np.testing.assert_allclose(ret, ref_ret, atol=1e-12)
    kw = {k: cols[k] for k in ("group", "traj", "step", "reward")}
    raw = compute_advantages("gae", **kw, value=cols["value"], gamma=gamma, lam=lam, whiten=False)
    np.testing.assert_allclose(raw, ref_adv, atol=1e-12)
    white = compute_advantages("gae", **kw, value=cols["value"], gamma=gamma, lam=lam)
    np.testing.assert_allclose(
        white, (ref_adv - ref_adv.mean()) / (ref_adv.std(ddof=1) + 1e-6), atol=1e-9
    )


def test_gae_with_lambda_one_is_the_return_minus_the_value() -> None:
    cols = random_batch(7)
    kw = {k: cols[k] for k in ("group", "traj", "step", "reward")}
    batch = CreditBatch.from_columns(**kw)
    adv, _ = gae_advantages(batch, cols["value"], 0.9, 1.0)
    np.testing.assert_allclose(adv, batch.returns_to_go(0.9) - cols["value"], atol=1e-12)
    with pytest.raises(ValueError, match="needs `value`"):
        compute_advantages("gae", **kw)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("gamma", "lam_low", "lam_high"), [(1.0, 1.0, 1.0), (0.95, 0.9, 0.8)])
def test_hae_matches_the_loop(seed: int, gamma: float, lam_low: float, lam_high: float) -> None:
    cols = random_batch(seed)
    kw = {k: cols[k] for k in ("group", "traj", "step", "reward")}
    batch = CreditBatch.from_columns(**kw)
    got = hierarchical_advantages(
        batch, cols["value"], cols["value_high"], cols["switch"], gamma, lam_low, lam_high
    )
    ref = loop_hae(cols, gamma, lam_low, lam_high)
    for key in ("adv_low", "ret_low", "adv_high", "ret_high"):
        np.testing.assert_allclose(got[key], ref[key], atol=1e-12, err_msg=key)
    adv = compute_advantages(
        "hiper", **kw, value_low=cols["value"], value_high=cols["value_high"],
        switch=cols["switch"], gamma=gamma, lam_low=lam_low, lam_high=lam_high,
    )  # fmt: skip
    np.testing.assert_allclose(adv, ref["adv_low"], atol=1e-12)


def test_hae_without_switches_is_gae_and_segments_count_switches() -> None:
    cols = random_batch(3)
    cols["switch"] = np.zeros(len(cols["reward"]), dtype=bool)
    kw = {k: cols[k] for k in ("group", "traj", "step", "reward")}
    batch = CreditBatch.from_columns(**kw)
    got = hierarchical_advantages(
        batch, cols["value"], cols["value_high"], cols["switch"], 0.9, 0.8, 0.7
    )
    adv, _ = gae_advantages(batch, cols["value"], 0.9, 0.8)
    np.testing.assert_allclose(got["adv_low"], adv, atol=1e-12)
    # one segment per trajectory: A^H on step 0 is the return minus V^H
    first = np.asarray(cols["step"]) == 0
    np.testing.assert_allclose(
        got["adv_high"][first], (batch.returns_to_go(0.9) - cols["value_high"])[first], atol=1e-12
    )
    batch = CreditBatch.from_columns(group=[0] * 4, traj=[0] * 4, step=[0, 1, 2, 3], reward=[0] * 4)
    assert segments(batch, np.array([True, False, True, True])).tolist() == [0, 0, 1, 2]
