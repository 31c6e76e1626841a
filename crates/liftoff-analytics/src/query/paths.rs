//! Paths: the most common transitions (event A directly followed by event B in the same
//! session) and 3-step flows (three consecutive events of one session). Repeats (A → A)
//! count like any other step. Counting is dense (an array indexed by event ids) while the
//! name count keeps the arrays small, and a hash map beyond that.

use super::per_user_ranges;
use super::sessions::is_new_session;
use crate::table::EventTable;
use crate::time::TimeRange;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub steps: [String; 3],
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Paths {
    /// Most frequent first (ties by names).
    pub transitions: Vec<Transition>,
    pub flows: Vec<Flow>,
}

/// Largest name count for which the 3-step counts are a dense n³ array (2 MiB of u64).
const DENSE_MAX_NAMES: usize = 64;

type PairCounts = HashMap<(u16, u16), u64>;
type TripleCounts = HashMap<(u16, u16, u16), u64>;

enum Counts {
    Dense {
        n: usize,
        pairs: Vec<u64>,
        triples: Vec<u64>,
    },
    Sparse {
        pairs: PairCounts,
        triples: TripleCounts,
    },
}

impl Counts {
    fn new(n: usize) -> Counts {
        if n <= DENSE_MAX_NAMES {
            Counts::Dense {
                n,
                pairs: vec![0; n * n],
                triples: vec![0; n * n * n],
            }
        } else {
            Counts::Sparse {
                pairs: HashMap::new(),
                triples: HashMap::new(),
            }
        }
    }

    #[inline]
    fn pair(&mut self, a: u16, b: u16) {
        match self {
            Counts::Dense { n, pairs, .. } => pairs[a as usize * *n + b as usize] += 1,
            Counts::Sparse { pairs, .. } => *pairs.entry((a, b)).or_default() += 1,
        }
    }

    #[inline]
    fn triple(&mut self, a: u16, b: u16, c: u16) {
        match self {
            Counts::Dense { n, triples, .. } => {
                triples[(a as usize * *n + b as usize) * *n + c as usize] += 1
            }
            Counts::Sparse { triples, .. } => *triples.entry((a, b, c)).or_default() += 1,
        }
    }

    fn into_maps(self) -> (PairCounts, TripleCounts) {
        match self {
            Counts::Sparse { pairs, triples } => (pairs, triples),
            Counts::Dense { n, pairs, triples } => {
                let id = |i: usize| i as u16;
                let p = pairs
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, &c)| ((id(i / n), id(i % n)), c))
                    .collect();
                let t = triples
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, &c)| ((id(i / (n * n)), id(i / n % n), id(i % n)), c))
                    .collect();
                (p, t)
            }
        }
    }
}

impl EventTable {
    /// Top `limit` transitions and 3-step flows over the events in `range`, sessions split
    /// by `gap_ms` of inactivity (and explicit session ids).
    pub fn paths(&self, range: TimeRange, gap_ms: i64, limit: usize) -> Paths {
        let n = self.events.len();
        let parts = per_user_ranges(self, |users| {
            let mut counts = Counts::new(n);
            for u in users {
                let rows = self.rows_in(u, range.from_ms, range.to_ms);
                let (ts, ev, ses) = (
                    &self.ts[rows.clone()],
                    &self.event[rows.clone()],
                    &self.session[rows],
                );
                // Length of the current session's run ending at i (capped at 3).
                let mut run = 0usize;
                for i in 0..ts.len() {
                    run = if i == 0 || is_new_session(ts[i - 1], ts[i], ses[i - 1], ses[i], gap_ms)
                    {
                        1
                    } else {
                        (run + 1).min(3)
                    };
                    if run >= 2 {
                        counts.pair(ev[i - 1], ev[i]);
                    }
                    if run == 3 {
                        counts.triple(ev[i - 2], ev[i - 1], ev[i]);
                    }
                }
            }
            counts.into_maps()
        });
        let mut pairs = PairCounts::new();
        let mut triples = TripleCounts::new();
        for (p, t) in parts {
            for (k, c) in p {
                *pairs.entry(k).or_default() += c;
            }
            for (k, c) in t {
                *triples.entry(k).or_default() += c;
            }
        }
        let name = |e: u16| self.events.name(u32::from(e)).to_owned();
        let mut transitions: Vec<Transition> = pairs
            .into_iter()
            .map(|((a, b), count)| Transition {
                from: name(a),
                to: name(b),
                count,
            })
            .collect();
        transitions.sort_by(|x, y| {
            y.count
                .cmp(&x.count)
                .then_with(|| (&x.from, &x.to).cmp(&(&y.from, &y.to)))
        });
        transitions.truncate(limit);
        let mut flows: Vec<Flow> = triples
            .into_iter()
            .map(|((a, b, c), count)| Flow {
                steps: [name(a), name(b), name(c)],
                count,
            })
            .collect();
        flows.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.steps.cmp(&y.steps)));
        flows.truncate(limit);
        Paths { transitions, flows }
    }
}
