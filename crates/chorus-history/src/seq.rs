//! A shortest edit script between two sequences (Myers' O(ND) algorithm), with a bound.
//!
//! Text, arrays and XML children are all aligned with it: characters by equality, elements by
//! equal content. The common prefix and suffix are trimmed first, so the usual case (one edit
//! somewhere in a long text) costs one linear scan.
//!
//! The cost of Myers grows with the number of differences D (time O((N+M)·D), and this version
//! keeps O(D²) of trace). A version far from the current document must still restore in bounded
//! time, so past [`MAX_EDITS`] differences, or [`MAX_COMPARISONS`] comparisons, the middle part
//! is replaced whole: still a correct script, only not a minimal one.

/// Differences past which the script stops being minimal: the trace then holds at most
/// `MAX_EDITS²` ≈ 4 M positions (16 MiB as `u32`).
const MAX_EDITS: usize = 2048;

/// Comparisons past which the script stops being minimal (a few hundred milliseconds of work).
const MAX_COMPARISONS: u64 = 50_000_000;

/// One step of an edit script, in order. Indexes are into `a` and `b` as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `a[a..a+len]` equals `b[b..b+len]`.
    Equal { a: usize, b: usize, len: usize },
    /// `a[a..a+len]` is not in `b`.
    Delete { a: usize, len: usize },
    /// `b[b..b+len]` is not in `a`.
    Insert { b: usize, len: usize },
}

/// The edit script from a sequence of `n` elements to one of `m`, where `eq(i, j)` says whether
/// `a[i]` equals `b[j]`. Consecutive steps of one sort are merged; within a run of changes,
/// deletions come before insertions.
pub(crate) fn diff(n: usize, m: usize, eq: impl Fn(usize, usize) -> bool) -> Vec<Op> {
    let mut prefix = 0;
    while prefix < n && prefix < m && eq(prefix, prefix) {
        prefix += 1;
    }
    let mut suffix = 0;
    while suffix < n - prefix && suffix < m - prefix && eq(n - 1 - suffix, m - 1 - suffix) {
        suffix += 1;
    }
    let mut steps = Vec::new();
    push(&mut steps, Step::Equal, prefix);
    let (an, bm) = (n - prefix - suffix, m - prefix - suffix);
    let middle = myers(an, bm, |i, j| eq(prefix + i, prefix + j)).unwrap_or_else(|| {
        let mut whole = Vec::new();
        push(&mut whole, Step::Delete, an);
        push(&mut whole, Step::Insert, bm);
        whole
    });
    for (step, len) in middle {
        push(&mut steps, step, len);
    }
    push(&mut steps, Step::Equal, suffix);
    to_ops(&steps)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Equal,
    Delete,
    Insert,
}

fn push(steps: &mut Vec<(Step, usize)>, step: Step, len: usize) {
    if len == 0 {
        return;
    }
    match steps.last_mut() {
        Some((last, n)) if *last == step => *n += len,
        _ => steps.push((step, len)),
    }
}

/// Turns runs into ops with positions, putting deletions before insertions inside each run of
/// changes.
fn to_ops(steps: &[(Step, usize)]) -> Vec<Op> {
    let mut ops = Vec::new();
    let (mut a, mut b) = (0, 0);
    let mut i = 0;
    while i < steps.len() {
        match steps[i] {
            (Step::Equal, len) => {
                ops.push(Op::Equal { a, b, len });
                a += len;
                b += len;
                i += 1;
            }
            _ => {
                let (mut del, mut ins) = (0, 0);
                while let Some(&(step, len)) = steps.get(i) {
                    match step {
                        Step::Delete => del += len,
                        Step::Insert => ins += len,
                        Step::Equal => break,
                    }
                    i += 1;
                }
                if del > 0 {
                    ops.push(Op::Delete { a, len: del });
                }
                if ins > 0 {
                    ops.push(Op::Insert { b, len: ins });
                }
                a += del;
                b += ins;
            }
        }
    }
    ops
}

/// Myers' greedy forward search with a trace, then a walk back. `None` when the bounds are hit.
fn myers(n: usize, m: usize, eq: impl Fn(usize, usize) -> bool) -> Option<Vec<(Step, usize)>> {
    if n == 0 || m == 0 {
        let mut steps = Vec::new();
        push(&mut steps, Step::Delete, n);
        push(&mut steps, Step::Insert, m);
        return Some(steps);
    }
    let max_d = (n + m).min(MAX_EDITS);
    let mut comparisons: u64 = 0;
    // Positions are stored as u32 to halve the trace; the sequences are shorter than that
    // (lengths in yrs are u32), and longer ones fall back to a whole replacement.
    if u32::try_from(n).is_err() || u32::try_from(m).is_err() {
        return None;
    }
    // trace[d][k + d] = furthest x on diagonal k after d edits (only k ≡ d mod 2 is used).
    let mut trace: Vec<Vec<u32>> = Vec::new();
    let mut found = None;
    'search: for d in 0..=max_d {
        let mut v = vec![0u32; 2 * d + 1];
        for ki in (0..=2 * d).step_by(2) {
            let k = ki as isize - d as isize;
            let mut x = if d == 0 {
                0
            } else {
                let prev = &trace[d - 1];
                // prev[k' + d - 1] holds diagonal k'.
                let from_below = |kk: isize| prev[(kk + d as isize - 1) as usize] as usize;
                if k == -(d as isize) || (k != d as isize && from_below(k - 1) < from_below(k + 1))
                {
                    from_below(k + 1)
                } else {
                    from_below(k - 1) + 1
                }
            };
            let mut y = (x as isize - k) as usize;
            while x < n && y < m {
                comparisons += 1;
                if !eq(x, y) {
                    break;
                }
                x += 1;
                y += 1;
            }
            v[ki] = x as u32; // x <= n, which fits (checked above)
            if x >= n && y >= m {
                trace.push(v);
                found = Some(d);
                break 'search;
            }
        }
        trace.push(v);
        if comparisons > MAX_COMPARISONS {
            return None;
        }
    }
    let d_total = found?;

    // Walk back from (n, m), collecting steps in reverse.
    let mut rev: Vec<(Step, usize)> = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..=d_total).rev() {
        let prev = &trace[d - 1];
        let at = |kk: isize| prev[(kk + d as isize - 1) as usize] as usize;
        let k = x as isize - y as isize;
        let down = k == -(d as isize) || (k != d as isize && at(k - 1) < at(k + 1));
        let prev_k = if down { k + 1 } else { k - 1 };
        let prev_x = at(prev_k);
        let prev_y = (prev_x as isize - prev_k) as usize;
        // After the edit, the search stood at (mid_x, prev_y or prev_y + 1), then followed a
        // diagonal of equal elements up to (x, y).
        let mid_x = if down { prev_x } else { prev_x + 1 };
        rev.push((Step::Equal, x - mid_x));
        rev.push((if down { Step::Insert } else { Step::Delete }, 1));
        x = prev_x;
        y = prev_y;
    }
    rev.push((Step::Equal, x));
    debug_assert_eq!(x, y);
    let mut steps = Vec::new();
    for (step, len) in rev.into_iter().rev() {
        push(&mut steps, step, len);
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Applies a script to `a`, taking insertions from `b`.
    fn apply(a: &[u8], b: &[u8], ops: &[Op]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next_a = 0;
        for op in ops {
            match *op {
                Op::Equal { a: i, b: j, len } => {
                    assert_eq!(i, next_a);
                    assert_eq!(&a[i..i + len], &b[j..j + len]);
                    out.extend_from_slice(&a[i..i + len]);
                    next_a = i + len;
                }
                Op::Delete { a: i, len } => {
                    assert_eq!(i, next_a);
                    next_a = i + len;
                }
                Op::Insert { b: j, len } => out.extend_from_slice(&b[j..j + len]),
            }
        }
        assert_eq!(next_a, a.len());
        out
    }

    fn edits(ops: &[Op]) -> usize {
        ops.iter()
            .map(|op| match op {
                Op::Equal { .. } => 0,
                Op::Delete { len, .. } | Op::Insert { len, .. } => *len,
            })
            .sum()
    }

    #[test]
    fn minimal_on_classic_example() {
        let (a, b) = (b"ABCABBA", b"CBABAC");
        let ops = diff(a.len(), b.len(), |i, j| a[i] == b[j]);
        assert_eq!(apply(a, b, &ops), b);
        assert_eq!(edits(&ops), 5, "{ops:?}");
    }

    #[test]
    fn one_insertion_in_the_middle() {
        let (a, b) = (b"hello world", b"hello brave world");
        let ops = diff(a.len(), b.len(), |i, j| a[i] == b[j]);
        assert_eq!(
            ops,
            vec![
                Op::Equal { a: 0, b: 0, len: 6 },
                Op::Insert { b: 6, len: 6 },
                Op::Equal {
                    a: 6,
                    b: 12,
                    len: 5
                },
            ]
        );
    }

    #[test]
    fn empty_sides() {
        assert_eq!(diff(0, 0, |_, _| true), vec![]);
        assert_eq!(diff(3, 0, |_, _| true), vec![Op::Delete { a: 0, len: 3 }]);
        assert_eq!(diff(0, 2, |_, _| true), vec![Op::Insert { b: 0, len: 2 }]);
    }

    #[test]
    fn falls_back_to_a_whole_replacement_past_the_bound() {
        // Nothing in common and more differences than MAX_EDITS.
        let a = vec![0u8; MAX_EDITS];
        let b = vec![1u8; MAX_EDITS];
        let ops = diff(a.len(), b.len(), |i, j| a[i] == b[j]);
        assert_eq!(apply(&a, &b, &ops), b);
    }

    proptest! {
        #[test]
        fn script_turns_a_into_b(a in proptest::collection::vec(0u8..4, 0..60),
                                 b in proptest::collection::vec(0u8..4, 0..60)) {
            let ops = diff(a.len(), b.len(), |i, j| a[i] == b[j]);
            prop_assert_eq!(apply(&a, &b, &ops), b.clone());
            // Never more edits than replacing everything.
            prop_assert!(edits(&ops) <= a.len() + b.len());
        }
    }
}
